/**
 * The agent: JSON-RPC 2.0 over stdio with Content-Length framing (vscode-jsonrpc), with
 * LSP's lifecycle. The protocol is documented in docs/protocol.md.
 */
import {
  CancellationToken,
  createMessageConnection,
  MessageConnection,
  ResponseMessage,
  StreamMessageWriter
} from 'vscode-jsonrpc/node';

import {
  ErrorCodes,
  HistoryGetParams,
  HistoryGetResult,
  InitializeParams,
  InitializeResult,
  KernelStateParams,
  MemoryGetResult,
  Methods,
  PageoutFinishedParams,
  PageoutReason,
  PageoutParams,
  PageoutProgress,
  PageoutResult,
  Policy,
  PolicySetParams,
  PROTOCOL_VERSION,
  ProcessExitsParams,
  ProcessExitsResult,
  ProcessesListResult,
  ProcessGetParams,
  ProcessGetResult,
  ProcessInfo,
  ProgressToken,
  ServerCapabilities,
  StatsSubscribeParams,
  StatsSubscribeResult,
  StatsUnsubscribeParams,
  StatsUnsubscribeResult
} from '../common/protocol';
import { loadAddon } from './addon';
import { containerMemory, MemoryCgroup, memoryCgroupOf } from './cgroup';
import { invalidParams, protocolError, toResponseError } from './errors';
import { ExitTracker, EXITS_CAPACITY } from './exits';
import { debug, log } from './log';
import { PageoutManager, PageoutOptions } from './pageout';
import { PolicyEngine } from './policies';
import { applyPolicy } from './policyConfig';
import { getProcessWithResidency, listProcesses, measureResident, pidProblem } from './processes';
import { StatsSampler } from './sampler';
import { CheckedMessageReader } from './transport';
import { SERVER_NAME, VERSION } from './version';
import { watchParent } from './watchdog';

export const CAPABILITIES: ServerCapabilities = {
  processesList: true,
  processGet: true,
  pageout: { supported: true, workDoneProgress: true, cancellable: true },
  statsSubscription: true,
  history: true,
  policies: ['idlePageout', 'pressure'],
  policy: true,
  kernelState: true,
  processExits: true,
  residency: true,
  pageoutFinished: true,
  containerMemory: true
};

type Lifecycle = 'starting' | 'running' | 'shuttingDown';

export interface AgentOptions {
  input: NodeJS.ReadableStream;
  output: NodeJS.WritableStream;
  /** Exit when this process is gone. */
  parentPid?: number;
  /** Called once with the exit code LSP prescribes: 0 after shutdown, else 1. */
  onExit: (code: number) => void;
}

/** Progress notifications are sent at most this often, besides begin and end. */
const PROGRESS_INTERVAL_MS = 100;
/** After stdin closes, how long the agent must have been idle before it exits. */
const IDLE_BEFORE_EXIT_MS = 50;
/** After stdin closes, the longest the agent waits for requests still running. */
const MAX_WAIT_AFTER_CLOSE_MS = 30000;
/** After `exit`, how long pending writes and cancelled page-outs may take. */
const FORCED_EXIT_MS = 2000;

export class Agent {
  private readonly connection: MessageConnection;
  private readonly pageouts = new PageoutManager();
  private readonly sampler: StatsSampler;
  private readonly exits: ExitTracker;
  private readonly policies: PolicyEngine;
  /** The agent's own memory cgroup, found once: the container whose memory is reported. */
  private readonly cgroup: MemoryCgroup | undefined = memoryCgroupOf('self');
  /** Kernel id of each process at the last listing, for notifications. */
  private kernelIds = new Map<number, string>();
  private lifecycle: Lifecycle = 'starting';
  private exited = false;
  /** Requests being handled, and when a message last arrived (see exitWhenIdle). */
  private inFlight = 0;
  private lastActivity = Date.now();
  private stopWatchdog: (() => void) | undefined;
  /** Kept to answer bodies the connection only reports (not JSON) or drops (not JSON-RPC). */
  private readonly reader: CheckedMessageReader;
  private readonly writer: StreamMessageWriter;
  private writeFailed = false;

  constructor(private readonly options: AgentOptions) {
    this.reader = new CheckedMessageReader(options.input, (reason, id) => {
      log(`bad message: ${reason}`);
      this.answerError(id, ErrorCodes.InvalidRequest, reason);
    });
    this.writer = new StreamMessageWriter(options.output);
    this.connection = createMessageConnection(this.reader, this.writer);
    this.exits = new ExitTracker(
      () => loadAddon().segmentDir(),
      exit => this.notify(Methods.processExited, exit)
    );
    this.policies = new PolicyEngine({
      list: () => this.list(),
      resident: measureResident,
      pageout: (info, reason, onCancellable) =>
        this.runPageout(info.pid, reason, { onCancellable }).then(
          () => true,
          () => false
        )
    });
    this.sampler = new StatsSampler({
      list: () => this.list(),
      onUpdate: params =>
        this.notify(Methods.statsUpdate, { ...params, container: containerMemory(this.cgroup) }),
      onChanged: params => this.notify(Methods.processesChanged, params),
      onError: error => log(`cannot sample processes: ${(error as Error)?.message ?? error}`)
    });
    this.registerHandlers();
  }

  /**
   * Every listing goes through the exit tracker: listing removes the stale segments it
   * meets, and a stale segment is how the tracker tells a killed process from one that exited.
   */
  private list(): ProcessInfo[] {
    const processes = this.exits.sample(listProcesses);
    this.kernelIds = new Map(processes.map(p => [p.pid, p.kernelId]));
    return processes;
  }

  start(): void {
    const { parentPid } = this.options;
    if (parentPid !== undefined) {
      this.stopWatchdog = watchParent(parentPid, () => {
        log(`parent process ${parentPid} is gone; exiting`);
        this.exit();
      });
    }
    this.reader.onError(error => {
      // A stream error (errno code) is stdin failing; anything else is a malformed frame.
      if ((error as NodeJS.ErrnoException).code !== undefined) {
        log(`cannot read from the client: ${error.message}`);
        return;
      }
      log(`bad message: ${error.message}`);
      // JSON-RPC 2.0: a body that does not parse gets -32700 with a null id.
      this.answerError(null, ErrorCodes.ParseError, `Parse error: ${error.message}`);
    });
    // A failed write (EPIPE once the client is gone) is reported here and by the promise
    // of the write; the connection then closes, and the agent leaves as when stdin closes.
    this.writer.onError(([error]) => {
      if (!this.writeFailed) {
        this.writeFailed = true;
        log(`cannot write to the client: ${error.message}`);
      }
    });
    // The client closed our stdin without `exit`: answer what was already sent, then go.
    this.connection.onClose(() => this.exitWhenIdle());
    this.connection.listen();
    debug(`listening (protocol ${PROTOCOL_VERSION}, pid ${process.pid})`);
  }

  /** Sends a notification; a failed write is logged once by the writer, never thrown. */
  private notify(method: string, params: unknown): void {
    try {
      this.connection.sendNotification(method, params).catch(() => undefined);
    } catch {
      // The connection is closed (its writer failed): nobody is left to tell.
    }
  }

  /** An error response the connection cannot send itself (the message never reached it). */
  private answerError(id: number | string | null, code: number, message: string): void {
    const response: ResponseMessage = { jsonrpc: '2.0', id, error: { code, message } };
    this.writer.write(response).catch(() => undefined);
  }

  private registerHandlers(): void {
    const c = this.connection;
    c.onRequest(Methods.initialize, (params: InitializeParams) =>
      this.tracked(() => this.initialize(params))
    );
    c.onRequest(Methods.shutdown, () => this.tracked(() => this.shutdown()));
    c.onRequest(Methods.processesList, () => this.guarded(() => this.processesList()));
    c.onRequest(Methods.processGet, (params: ProcessGetParams) =>
      this.guarded(() => this.processGet(params))
    );
    c.onRequest(Methods.processPageout, (params: PageoutParams, token: CancellationToken) =>
      this.guarded(() => this.pageout(params, token))
    );
    c.onRequest(Methods.statsSubscribe, (params: StatsSubscribeParams) =>
      this.guarded(() => this.statsSubscribe(params))
    );
    c.onRequest(Methods.statsUnsubscribe, (params: StatsUnsubscribeParams) =>
      this.guarded(() => this.statsUnsubscribe(params))
    );
    c.onRequest(Methods.historyGet, (params: HistoryGetParams) =>
      this.guarded(() => this.historyGet(params))
    );
    c.onRequest(Methods.policyGet, () => this.guarded(() => this.policies.current));
    c.onRequest(Methods.policySet, (params: PolicySetParams) =>
      this.guarded(() => this.policySet(params))
    );
    c.onRequest(Methods.processExits, (params: ProcessExitsParams) =>
      this.guarded(() => this.processExits(params))
    );
    c.onRequest(Methods.memoryGet, () => this.guarded(() => this.memoryGet()));
    c.onRequest((method: string) =>
      this.guarded(() => {
        throw protocolError(ErrorCodes.MethodNotFound, 'ENOMETHOD', `unknown method ${method}`);
      })
    );
    c.onNotification(Methods.initialized, () => this.touch(() => debug('client initialized')));
    c.onNotification(Methods.exit, () => this.exit());
    c.onNotification(Methods.kernelState, (params: KernelStateParams) =>
      this.touch(() => this.kernelState(params))
    );
    c.onNotification((method: string) => this.touch(() => debug(`ignored notification ${method}`)));
  }

  private touch(handler: () => void): void {
    this.lastActivity = Date.now();
    handler();
  }

  /** Runs a request handler, counting it as in flight until it has settled. */
  private async tracked<T>(handler: () => T | Promise<T>): Promise<T> {
    this.inFlight += 1;
    this.lastActivity = Date.now();
    try {
      return await handler();
    } finally {
      this.inFlight -= 1;
      this.lastActivity = Date.now();
    }
  }

  /** Runs a request handler once the lifecycle allows it, mapping failures to protocol errors. */
  private guarded<T>(handler: () => T | Promise<T>): Promise<T> {
    return this.tracked(() => this.checkedCall(handler));
  }

  private async checkedCall<T>(handler: () => T | Promise<T>): Promise<T> {
    if (this.lifecycle === 'starting') {
      throw protocolError(
        ErrorCodes.NotInitialized,
        'ENOT_INITIALIZED',
        'the agent is not initialized: send `initialize` first'
      );
    }
    if (this.lifecycle === 'shuttingDown') {
      throw protocolError(ErrorCodes.InvalidRequest, 'EINVAL', 'the agent is shutting down');
    }
    try {
      return await handler();
    } catch (error) {
      throw toResponseError(error);
    }
  }

  private initialize(params: InitializeParams): InitializeResult {
    if (this.lifecycle !== 'starting') {
      throw protocolError(ErrorCodes.InvalidRequest, 'EINVAL', 'initialize may be sent only once');
    }
    this.lifecycle = 'running';
    this.sampler.start();
    this.policies.start();
    const client = params?.clientInfo?.name ?? 'unknown client';
    debug(`initialize from ${client} (protocol ${params?.protocolVersion ?? 'unspecified'})`);
    return {
      protocolVersion: PROTOCOL_VERSION,
      capabilities: CAPABILITIES,
      serverInfo: { name: SERVER_NAME, version: VERSION }
    };
  }

  private shutdown(): null {
    if (this.lifecycle === 'starting') {
      throw protocolError(
        ErrorCodes.NotInitialized,
        'ENOT_INITIALIZED',
        'the agent is not initialized: send `initialize` first'
      );
    }
    this.lifecycle = 'shuttingDown';
    this.sampler.stop();
    this.policies.stop();
    this.pageouts.cancelAll();
    return null;
  }

  private statsSubscribe(params: StatsSubscribeParams): StatsSubscribeResult {
    const interval = params?.intervalMs;
    if (typeof interval !== 'number' || !Number.isFinite(interval) || interval <= 0) {
      throw invalidParams(
        `intervalMs must be a positive number of milliseconds, got ${JSON.stringify(interval)}`
      );
    }
    return this.sampler.subscribe(interval);
  }

  private statsUnsubscribe(params: StatsUnsubscribeParams): StatsUnsubscribeResult {
    const id = params?.subscriptionId;
    if (typeof id !== 'number' || !Number.isInteger(id)) {
      throw invalidParams(`subscriptionId must be an integer, got ${JSON.stringify(id)}`);
    }
    return { removed: this.sampler.unsubscribe(id) };
  }

  private historyGet(params: HistoryGetParams): HistoryGetResult {
    const problem = pidProblem(params?.pid);
    if (problem) {
      throw invalidParams(problem);
    }
    const since = params.sinceMs;
    const sinceGiven = since !== undefined && since !== null;
    if (sinceGiven && (typeof since !== 'number' || !Number.isFinite(since))) {
      throw invalidParams(`sinceMs must be ms since the Unix epoch, got ${JSON.stringify(since)}`);
    }
    const result = this.sampler.history(params.pid, since ?? undefined);
    if (!result) {
      throw protocolError(
        ErrorCodes.UnknownProcess,
        'ENOENT_PROCESS',
        `process ${params.pid}: no BigMaac process with this pid`
      );
    }
    return result;
  }

  private processesList(): ProcessesListResult {
    return { processes: this.list() };
  }

  private async processGet(params: ProcessGetParams): Promise<ProcessGetResult> {
    const problem = pidProblem(params?.pid);
    if (problem) {
      throw invalidParams(problem);
    }
    return { process: await getProcessWithResidency(params.pid) };
  }

  private policySet(params: PolicySetParams): Policy {
    try {
      return this.policies.set(applyPolicy(this.policies.current, params));
    } catch (error) {
      throw invalidParams((error as Error).message);
    }
  }

  private processExits(params: ProcessExitsParams | undefined): ProcessExitsResult {
    const since = params?.sinceMs;
    if (since !== undefined && since !== null && (typeof since !== 'number' || !isFinite(since))) {
      throw invalidParams(`sinceMs must be ms since the Unix epoch, got ${JSON.stringify(since)}`);
    }
    // Look once more, so an exit since the last tick is in the answer.
    this.list();
    return { exits: this.exits.recent(since ?? undefined), capacity: EXITS_CAPACITY };
  }

  private memoryGet(): MemoryGetResult {
    return { container: containerMemory(this.cgroup), measuredAt: Date.now() };
  }

  /** A `kernel/state` notification from the Jupyter server; bad ones are logged and dropped. */
  private kernelState(params: KernelStateParams): void {
    if (this.lifecycle !== 'running') {
      return;
    }
    const { kernelId, state } = params ?? {};
    if (typeof kernelId !== 'string' || kernelId === '' || typeof state !== 'string') {
      log(`ignored kernel/state without a kernelId and a state: ${JSON.stringify(params)}`);
      return;
    }
    debug(`kernel ${kernelId} is ${state}`);
    this.policies.kernelState(kernelId, state);
  }

  /** Any page-out the agent runs, reported to every client with `pageout/finished`. */
  private async runPageout(
    pid: number,
    reason: PageoutReason,
    options: PageoutOptions
  ): Promise<PageoutResult> {
    const kernelId = this.kernelIds.get(pid);
    const report = (fields: Pick<PageoutFinishedParams, 'ok' | 'error' | 'result'>) => {
      const params: PageoutFinishedParams = {
        pid,
        ...(kernelId ? { kernelId } : {}),
        reason,
        ...fields,
        at: Date.now()
      };
      this.notify(Methods.pageoutFinished, params);
    };
    debug(`page-out of ${pid} (${reason}) started`);
    try {
      const result = await this.pageouts.pageout(pid, options);
      const { bytesWritten, durationMs, residentBefore, residentAfter } = result;
      debug(`page-out of ${pid} (${reason}) wrote ${bytesWritten} bytes`);
      report({ ok: true, result: { bytesWritten, durationMs, residentBefore, residentAfter } });
      return result;
    } catch (error) {
      const { message, data } = toResponseError(error);
      debug(`page-out of ${pid} (${reason}) failed: ${message}`);
      report({ ok: false, error: { code: data?.code ?? 'EINTERNAL', message } });
      throw error;
    }
  }

  private async pageout(params: PageoutParams, token: CancellationToken): Promise<PageoutResult> {
    const problem = pidProblem(params?.pid);
    if (problem) {
      throw invalidParams(problem);
    }
    const pid = params.pid;
    const progress = this.progressReporter(params.workDoneToken, pid);
    try {
      const result = await this.runPageout(pid, 'request', {
        onProgress: progress?.report,
        onCancellable: cancel => {
          if (token.isCancellationRequested) {
            cancel();
          }
          token.onCancellationRequested(cancel);
        }
      });
      progress?.end(`paged out ${result.bytesWritten} bytes`);
      return result;
    } catch (error) {
      const cancelled = (error as { code?: unknown })?.code === 'ECANCELLED';
      progress?.end(cancelled ? 'page-out cancelled' : 'page-out failed');
      throw error;
    }
  }

  /** `$/progress` for one page-out, throttled; undefined when the client gave no token. */
  private progressReporter(token: ProgressToken | undefined, pid: number) {
    if (token === undefined || token === null) {
      return undefined;
    }
    if (typeof token !== 'string' && typeof token !== 'number') {
      throw invalidParams('workDoneToken must be a string or a number');
    }
    const send = (value: PageoutProgress) => {
      this.notify(Methods.progress, { token, value });
    };
    send({ kind: 'begin', title: `Paging out process ${pid}`, cancellable: true, percentage: 0 });
    let lastSent = 0;
    return {
      report: ({ bytesDone, bytesTotal }: { bytesDone: number; bytesTotal: number }) => {
        const now = Date.now();
        if (now - lastSent < PROGRESS_INTERVAL_MS && bytesDone < bytesTotal) {
          return;
        }
        lastSent = now;
        // No total yet: the process has not started (it may be stopped) or not counted.
        const percentage = bytesTotal > 0 ? Math.floor((100 * bytesDone) / bytesTotal) : 0;
        send({ kind: 'report', bytesDone, bytesTotal, percentage });
      },
      end: (message: string) => send({ kind: 'end', message })
    };
  }

  /**
   * After stdin closed: vscode-jsonrpc still dispatches the messages it has queued, one
   * per event-loop turn, so leave only once nothing has arrived or run for a while.
   */
  private exitWhenIdle(): void {
    const closedAt = Date.now();
    const timer = setInterval(() => {
      const idle = this.inFlight === 0 && Date.now() - this.lastActivity >= IDLE_BEFORE_EXIT_MS;
      // Nobody may be left to read a page-out that never ends: do not wait for it forever.
      if (idle || Date.now() - closedAt > MAX_WAIT_AFTER_CLOSE_MS) {
        clearInterval(timer);
        this.exit();
      }
    }, IDLE_BEFORE_EXIT_MS / 2);
  }

  private exit(): void {
    if (this.exited) {
      return;
    }
    this.exited = true;
    this.stopWatchdog?.();
    this.sampler.stop();
    this.policies.stop();
    this.pageouts.cancelAll();
    const code = this.lifecycle === 'shuttingDown' ? 0 : 1;
    // The connection stays open: answers already handed to its writer must still go out.
    this.options.onExit(code);
  }
}

/** `bigmaac agent`: serve the protocol on stdin/stdout until `exit` or the parent dies. */
export function runAgent(parentPid?: number): void {
  // Anything printed by mistake must not corrupt the protocol stream.
  console.log = console.error;
  console.info = console.error;
  // When the parent dies, stderr may be a broken pipe too: with nowhere left to log, an
  // unhandled EPIPE there must not take the agent down before it has cleaned up.
  process.stderr.on('error', () => undefined);
  const agent = new Agent({
    input: process.stdin,
    output: process.stdout,
    parentPid,
    onExit: code => {
      // Stop reading and let the event loop drain, so answers still being written reach
      // the pipe; leave by force if something keeps the loop alive.
      process.exitCode = code;
      process.stdin.destroy();
      setTimeout(() => process.exit(code), FORCED_EXIT_MS).unref();
    }
  });
  agent.start();
}
