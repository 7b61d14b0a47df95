/**
 * Shared set-up for the agent and CLI tests: the built artifacts, a private segment and
 * swap directory per test file, a real Python process under the library, and a client
 * connection to the real agent bundle.
 *
 * Tests build nothing: `make native addon agent` comes first. A missing artifact fails
 * the tests with a message that says so.
 */
import { ChildProcess, spawn, spawnSync, SpawnSyncReturns } from 'child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'fs';
import { tmpdir } from 'os';
import { join, resolve } from 'path';
import {
  createMessageConnection,
  MessageConnection,
  StreamMessageReader,
  StreamMessageWriter
} from 'vscode-jsonrpc/node';

export const REPO = resolve(__dirname, '..', '..', '..');
export const BUNDLE = join(REPO, 'python', 'jupyterlab_bigmaac', '_bundled', 'bigmaac.js');
export const LIBRARY = join(REPO, 'native', 'build', 'libbigmaac.so');
export const ADDON = join(REPO, 'native', 'build', 'bigmaac.node');
export const PYTHON = join(REPO, '.venv', 'bin', 'python');
export const MiB = 1024 * 1024;

/** Throws one clear error naming every missing artifact and how to build it. */
export function requireArtifacts(paths = [BUNDLE, LIBRARY, ADDON, PYTHON]): void {
  const missing = paths.filter(path => !existsSync(path));
  if (missing.length > 0) {
    throw new Error(
      `missing build artifacts: ${missing.join(', ')}; run \`make native addon agent\` ` +
        '(and `make python-env` for .venv) before the tests'
    );
  }
}

/** A private segment directory and swap directory, so tests never see others' processes. */
export class Sandbox {
  readonly root = mkdtempSync(join(tmpdir(), 'bigmaac-jest-'));
  readonly segmentDir = join(this.root, 'segments');
  readonly swapDir = join(this.root, 'swap');

  constructor() {
    mkdirSync(this.segmentDir, { mode: 0o700 });
    mkdirSync(this.swapDir, { mode: 0o700 });
  }

  /** The environment every process of a test gets: ours plus the sandbox's paths. */
  env(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
    return {
      ...process.env,
      BIGMAAC_SEGMENT_DIR: this.segmentDir,
      BIGMAAC_DIR: this.swapDir,
      BIGMAAC_ADDON: ADDON,
      BIGMAAC_LIBRARY: LIBRARY,
      ...extra
    };
  }

  dispose(): void {
    rmSync(this.root, { recursive: true, force: true });
  }
}

/** Python that allocates `bytes`, dirties every page, says "ready" and waits for stdin to close. */
export function allocatingScript(bytes: number): string {
  return [
    'import sys',
    `a = bytearray(${bytes})`,
    'a[::4096] = b"x" * len(range(0, len(a), 4096))',
    'print("ready", flush=True)',
    'sys.stdin.read()'
  ].join('\n');
}

export interface BigProcess {
  child: ChildProcess;
  pid: number;
  stop(): Promise<void>;
}

/**
 * Python that allocates `bytes`, writes a different byte at the start of each page, says
 * "ready", then answers each "check" line on stdin with "intact" or "corrupt".
 */
export function verifyingScript(bytes: number): string {
  return [
    'import sys',
    `a = bytearray(${bytes})`,
    'expected = bytes(i % 251 for i in range(len(range(0, len(a), 4096))))',
    'a[::4096] = expected',
    'print("ready", flush=True)',
    'for line in sys.stdin:',
    '    print("intact" if a[::4096] == expected else "corrupt", flush=True)'
  ].join('\n');
}

export interface VerifyingProcess extends BigProcess {
  /** Asks the process to compare its memory with what it wrote: "intact" or "corrupt". */
  check(): Promise<string>;
}

/** A real Python process under the library that can tell whether its data survived. */
export async function startVerifyingProcess(
  sandbox: Sandbox,
  bytes: number,
  kernelId = 'jest-kernel-verify'
): Promise<VerifyingProcess> {
  const child = await startPythonUnderLibrary(
    sandbox,
    verifyingScript(bytes),
    kernelId,
    'jest-verify',
    'the verifying Python process'
  );
  return {
    child,
    pid: child.pid as number,
    stop: stopper(child),
    check: () =>
      new Promise((resolvePromise, reject) => {
        let answer = '';
        const onData = (chunk: Buffer) => {
          answer += chunk.toString();
          const verdict = /(intact|corrupt)/.exec(answer);
          if (verdict) {
            child.stdout?.off('data', onData);
            resolvePromise(verdict[1]);
          }
        };
        child.stdout?.on('data', onData);
        child.once('exit', () => reject(new Error('the verifying process exited')));
        child.stdin?.write('check\n');
      })
  };
}

/** Resolves once `child` printed `marker` on stdout; rejects if it exits first. */
export function waitForOutput(child: ChildProcess, marker: string, what: string): Promise<string> {
  return new Promise((resolvePromise, reject) => {
    let stdout = '';
    let stderr = '';
    child.stderr?.on('data', chunk => (stderr += chunk));
    child.stdout?.on('data', chunk => {
      stdout += chunk;
      if (stdout.includes(marker)) {
        resolvePromise(stdout);
      }
    });
    child.on('exit', (code, signal) =>
      reject(new Error(`${what} exited (${code ?? signal}) before "${marker}": ${stderr.trim()}`))
    );
  });
}

function stopper(child: ChildProcess): () => Promise<void> {
  return () =>
    new Promise(resolvePromise => {
      if (child.exitCode !== null || child.signalCode !== null) {
        resolvePromise();
        return;
      }
      child.on('exit', () => resolvePromise());
      child.stdin?.end();
      setTimeout(() => child.kill('SIGKILL'), 5000).unref();
    });
}

/** Runs a Python script under the library as a kernel would be, once it prints "ready". */
async function startPythonUnderLibrary(
  sandbox: Sandbox,
  script: string,
  kernelId: string,
  label: string,
  what: string
): Promise<ChildProcess> {
  const child = spawn(PYTHON, ['-c', script], {
    env: sandbox.env({
      LD_PRELOAD: LIBRARY,
      BIGMAAC_MIN_BIGMAAC_SIZE: '1M',
      BIGMAAC_KERNEL_ID: kernelId,
      BIGMAAC_LABEL: label
    }),
    stdio: ['pipe', 'pipe', 'pipe']
  });
  await waitForOutput(child, 'ready', what);
  return child;
}

/** A real Python process with `bytes` of disk-backed memory under the library. */
export async function startBigProcess(
  sandbox: Sandbox,
  bytes: number,
  kernelId = 'jest-kernel-0001'
): Promise<BigProcess> {
  const child = await startPythonUnderLibrary(
    sandbox,
    allocatingScript(bytes),
    kernelId,
    'jest',
    'the allocating Python process'
  );
  return { child, pid: child.pid as number, stop: stopper(child) };
}

export interface AgentProcess {
  child: ChildProcess;
  connection: MessageConnection;
  stderr(): string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  stop(): Promise<void>;
}

/** The agent bundle as a child process on pipes, its stderr kept and its exit awaited. */
function spawnAgent(
  sandbox: Sandbox,
  args: string[],
  extraEnv: NodeJS.ProcessEnv = {},
  user: { uid?: number; gid?: number } = {}
) {
  const child = spawn(process.execPath, [BUNDLE, 'agent', ...args], {
    env: sandbox.env(extraEnv),
    stdio: ['pipe', 'pipe', 'pipe'],
    ...user
  });
  let stderr = '';
  child.stderr.on('data', chunk => (stderr += chunk));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>(done =>
    child.on('exit', (code, signal) => done({ code, signal }))
  );
  return { child, stderr: () => stderr, exited };
}

/** The real agent bundle on stdio, with a vscode-jsonrpc client connection to it. */
export function startAgent(
  sandbox: Sandbox,
  args: string[] = [],
  extraEnv: NodeJS.ProcessEnv = {},
  user: { uid?: number; gid?: number } = {}
): AgentProcess {
  const { child, stderr, exited } = spawnAgent(sandbox, args, extraEnv, user);
  const connection = createMessageConnection(
    new StreamMessageReader(child.stdout),
    new StreamMessageWriter(child.stdin)
  );
  connection.listen();
  return {
    child,
    connection,
    stderr,
    exited,
    stop: async () => {
      connection.dispose();
      await stopper(child)();
    }
  };
}

/** Runs the CLI bundle to completion. */
export function runCli(
  sandbox: Sandbox,
  args: string[],
  extraEnv: NodeJS.ProcessEnv = {}
): SpawnSyncReturns<string> {
  return spawnSync(process.execPath, [BUNDLE, ...args], {
    env: sandbox.env(extraEnv),
    encoding: 'utf8',
    timeout: 20000
  });
}

/** The error a rejected request carried (vscode-jsonrpc's ResponseError). */
export async function responseError(
  request: Promise<unknown>
): Promise<{ code: number; message: string; data?: { code?: string } }> {
  try {
    await request;
  } catch (error) {
    return error as { code: number; message: string; data?: { code?: string } };
  }
  throw new Error('the request succeeded but an error was expected');
}

/** Python that allocates `N` MiB (dirtied) for each line `N` on stdin and answers "grown". */
export function steppingScript(): string {
  return [
    'import sys',
    'held = []',
    'print("ready", flush=True)',
    'for line in sys.stdin:',
    '    a = bytearray(int(line) << 20)',
    '    a[::4096] = b"x" * len(range(0, len(a), 4096))',
    '    held.append(a)',
    '    print("grown", flush=True)'
  ].join('\n');
}

export interface SteppingProcess extends BigProcess {
  /** Allocates `mib` more MiB and resolves once the process has them. */
  grow(mib: number): Promise<void>;
}

/** A real Python process under the library that grows on demand. */
export async function startSteppingProcess(
  sandbox: Sandbox,
  kernelId = 'jest-kernel-step'
): Promise<SteppingProcess> {
  const child = await startPythonUnderLibrary(
    sandbox,
    steppingScript(),
    kernelId,
    'jest-step',
    'the stepping Python process'
  );
  let grown = 0;
  return {
    child,
    pid: child.pid as number,
    stop: stopper(child),
    grow: async (mib: number) => {
      grown += 1;
      const expected = grown;
      const done = new Promise<void>((resolvePromise, reject) => {
        let seen = 0;
        const onData = (chunk: Buffer) => {
          seen += (chunk.toString().match(/grown/g) ?? []).length;
          if (seen >= 1) {
            child.stdout?.off('data', onData);
            resolvePromise();
          }
        };
        child.stdout?.on('data', onData);
        child.once('exit', () => reject(new Error(`the stepping process exited at step ${expected}`)));
      });
      child.stdin?.write(`${mib}\n`);
      await done;
    }
  };
}

/** Every `method` notification a connection receives, and a way to wait for one. */
export interface NotificationLog<T> {
  readonly received: T[];
  /** The first notification, received before or after the call, that satisfies `accept`. */
  waitFor(accept?: (params: T) => boolean, after?: number): Promise<T>;
}

/**
 * Records `method` notifications. vscode-jsonrpc keeps one handler per method, so a test
 * records once per connection and method, then waits on the log.
 */
export function recordNotifications<T>(
  connection: MessageConnection,
  method: string
): NotificationLog<T> {
  const log = new ArrivalLog<T>();
  connection.onNotification(method, (params: T) => log.push(params));
  return {
    received: log.items,
    waitFor: (accept = () => true, after = 0) => log.waitFor(accept, after)
  };
}

/** Items in the order they arrived, and a way to wait for one. */
class ArrivalLog<T> {
  readonly items: T[] = [];

  push(item: T): void {
    this.items.push(item);
    for (const waiter of [...this._waiters]) {
      if (waiter.accept(item)) {
        this._waiters.splice(this._waiters.indexOf(waiter), 1);
        waiter.done(item);
      }
    }
  }

  /** The first item from index `after` on, there now or still to come, that satisfies `accept`. */
  waitFor(accept: (item: T) => boolean, after = 0): Promise<T> {
    const earlier = this.items.slice(after).find(accept);
    if (earlier !== undefined) {
      return Promise.resolve(earlier);
    }
    return new Promise(done => this._waiters.push({ accept, done }));
  }

  private _waiters: { accept: (item: T) => boolean; done: (item: T) => void }[] = [];
}

/** The initialize params every test client sends. */
export const INITIALIZE = { processId: process.pid, clientInfo: { name: 'jest' }, protocolVersion: '1.0' };

/** The handshake a client owes before any other request: initialize, then initialized. */
export async function initialize(started: AgentProcess): Promise<AgentProcess> {
  await started.connection.sendRequest('initialize', INITIALIZE);
  await started.connection.sendNotification('initialized', {});
  return started;
}

/** A CLI's stderr, which must be exactly one line. */
export function oneLine(stderr: string): string {
  const lines = stderr.trimEnd().split('\n');
  expect(lines).toHaveLength(1);
  return lines[0];
}

/** One message the agent wrote on stdout, parsed. */
export interface RawMessage {
  id?: number | string | null;
  method?: string;
  result?: unknown;
  error?: { code: number; message: string };
  params?: unknown;
}

/** The agent bundle on stdio without a JSON-RPC library: frames written and parsed by hand. */
export interface RawAgent {
  child: ChildProcess;
  /** Writes one Content-Length frame; a string body is sent as it is. */
  send(body: unknown): void;
  /** Every message parsed so far, in order. */
  readonly messages: RawMessage[];
  /** The first message, seen before or after the call, that satisfies `accept`. */
  waitFor(accept: (message: RawMessage) => boolean): Promise<RawMessage>;
  stderr(): string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export function frame(body: string): string {
  return `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
}

export function startRawAgent(sandbox: Sandbox, args: string[] = []): RawAgent {
  const { child, stderr, exited } = spawnAgent(sandbox, args);
  const messages = new ArrivalLog<RawMessage>();
  let pending = Buffer.alloc(0);
  child.stdout.on('data', (chunk: Buffer) => {
    pending = Buffer.concat([pending, chunk]);
    for (;;) {
      const header = /^Content-Length: (\d+)\r\n\r\n/.exec(pending.toString('latin1'));
      if (!header) {
        // Wait for the rest of a header; anything else is a message without framing.
        const start = pending.toString('latin1', 0, 'Content-Length: '.length);
        if (!'Content-Length: '.startsWith(start)) {
          throw new Error(`not a frame on the agent's stdout: ${pending.toString().slice(0, 80)}`);
        }
        return;
      }
      const start = header[0].length;
      const end = start + Number(header[1]);
      if (pending.length < end) {
        return;
      }
      const message = JSON.parse(pending.subarray(start, end).toString('utf8')) as RawMessage;
      pending = pending.subarray(end);
      messages.push(message);
    }
  });
  return {
    child,
    messages: messages.items,
    send: body => {
      child.stdin.write(frame(typeof body === 'string' ? body : JSON.stringify(body)));
    },
    waitFor: accept => messages.waitFor(accept),
    stderr,
    exited
  };
}

/** What `useTestBed` gives a test file. */
export interface TestBed {
  /** The file's sandbox, made when the file loads and removed after its last test. */
  readonly sandbox: Sandbox;
  /** The big process shared by the file's tests (with `useTestBed`'s `big` only). */
  readonly big: BigProcess;
  /** `startAgent` in the sandbox; the agent is stopped after the test. */
  agent(
    args?: string[],
    extraEnv?: NodeJS.ProcessEnv,
    user?: { uid?: number; gid?: number }
  ): AgentProcess;
  /** `agent()` after the initialize handshake. */
  initializedAgent(): Promise<AgentProcess>;
  /** `startBigProcess` in the sandbox; the process is stopped after the test. */
  bigProcess(bytes: number, kernelId: string): Promise<BigProcess>;
}

/**
 * The set-up an agent or CLI test file shares, as jest hooks; call it at the
 * file's top level. Before the first test the artifacts are checked and, with
 * `big`, one big process starts for all the tests; what a test started with
 * `agent` or `bigProcess` is stopped after it; after the last test the big
 * process stops and the sandbox is removed.
 */
export function useTestBed(
  options: { big?: { bytes: number; kernelId?: string } } = {}
): TestBed {
  const sandbox = new Sandbox();
  let big: BigProcess | undefined;
  const agents: AgentProcess[] = [];
  const processes: BigProcess[] = [];

  beforeAll(async () => {
    requireArtifacts();
    if (options.big) {
      big = await startBigProcess(sandbox, options.big.bytes, options.big.kernelId);
    }
  });

  afterEach(async () => {
    await Promise.all(agents.splice(0).map(a => a.stop()));
    await Promise.all(processes.splice(0).map(p => p.stop()));
  });

  afterAll(async () => {
    await big?.stop();
    sandbox.dispose();
  });

  const agent = (
    args: string[] = [],
    extraEnv: NodeJS.ProcessEnv = {},
    user: { uid?: number; gid?: number } = {}
  ): AgentProcess => {
    const started = startAgent(sandbox, args, extraEnv, user);
    agents.push(started);
    return started;
  };

  return {
    sandbox,
    get big(): BigProcess {
      if (!big) {
        throw new Error('no big process: pass `big` to useTestBed');
      }
      return big;
    },
    agent,
    initializedAgent: () => initialize(agent()),
    bigProcess: async (bytes, kernelId) => {
      const started = await startBigProcess(sandbox, bytes, kernelId);
      processes.push(started);
      return started;
    }
  };
}
