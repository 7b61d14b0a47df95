/**
 * The panel model's test bed: fake sessions and a fake agent, the protocol's
 * shapes for their answers, and the model over them. The real agent is
 * exercised by the agent's own tests and, end to end, by the Galata tests in
 * ui-tests/.
 */
import type { Session } from '@jupyterlab/services';
import { Signal } from '@lumino/signaling';

import {
  ContainerMemory,
  ErrorCodes,
  InitializeResult,
  Methods,
  PageoutParams,
  PageoutResult,
  ProcessInfo
} from '../../common/protocol';
import type {
  IAgentNotification,
  IRequestOptions
} from '../../panel/agentClient';
import { BigmaacModel, IAgentConnection } from '../../panel/model';
import type { IKernelState } from '../../panel/serverApi';

const MIB = 2 ** 20;

/** The part of the session manager the model uses. */
export class FakeSessions {
  readonly runningChanged = new Signal<this, Session.IModel[]>(this);
  models: Session.IModel[] = [];
  /** How often the model asked for a refresh of the running sessions. */
  refreshes = 0;
  async refreshRunning(): Promise<void> {
    this.refreshes++;
  }
  running(): IterableIterator<Session.IModel> {
    return this.models[Symbol.iterator]();
  }
  add(id: string, path: string, kernelId: string): void {
    this.models.push({
      id,
      name: path,
      path,
      type: 'notebook',
      kernel: { id: kernelId, name: 'python3' }
    });
    this.runningChanged.emit(this.models);
  }
}

/**
 * A small in-memory agent that answers with the protocol's shapes and records
 * every request.
 */
export class FakeAgent implements IAgentConnection {
  readonly notificationReceived = new Signal<this, IAgentNotification>(this);
  processes: ProcessInfo[] = [];
  pageoutError: Error | null = null;
  requests: { method: string; params?: unknown }[] = [];

  /** `process/get` answers by pid; a pid without one is an unknown process. */
  details = new Map<number, Record<string, unknown>>();
  /** `history/get` answers by pid. */
  history = new Map<
    number,
    {
      at: number;
      diskBackedBytes: number;
      diskBackedCount: number;
      peakBytes: number;
    }[]
  >();
  /** When set, `process/pageout` waits for `$/cancelRequest` (the signal). */
  waitForCancel = false;
  /** What `memory/get` answers; `undefined`: the agent lacks `containerMemory`. */
  container: ContainerMemory | null | undefined = undefined;

  get serverInfo(): InitializeResult | null {
    const containerMemory = this.container !== undefined;
    return {
      protocolVersion: '1.1',
      serverInfo: { name: 'fake agent', version: '0.0.0' },
      capabilities: { containerMemory } as InitializeResult['capabilities']
    };
  }

  async request<T>(
    method: string,
    params?: unknown,
    options?: IRequestOptions
  ): Promise<T> {
    this.requests.push({ method, params });
    if (method === Methods.processesList) {
      return { processes: this.processes } as T;
    }
    if (method === Methods.processGet) {
      const { pid } = params as { pid: number };
      const details = this.details.get(pid);
      if (!details) {
        throw new Error(`no BigMaac process with pid ${pid}`);
      }
      const process = this.processes.find(p => p.pid === pid)!;
      return { process: { ...process, ...details } } as T;
    }
    if (method === Methods.memoryGet && this.container !== undefined) {
      return { container: this.container, measuredAt: Date.now() } as T;
    }
    if (method === Methods.historyGet) {
      const { pid } = params as { pid: number };
      const samples = this.history.get(pid);
      if (!samples) {
        throw new Error(`no BigMaac process with pid ${pid}`);
      }
      return { pid, startTime: 0, samples, capacity: 720 } as T;
    }
    if (method === Methods.processPageout && this.waitForCancel) {
      await new Promise<void>(resolve =>
        options!.signal!.addEventListener('abort', () => resolve())
      );
      throw Object.assign(new Error('cancelled'), {
        rpcCode: ErrorCodes.RequestCancelled
      });
    }
    if (method === Methods.processPageout) {
      const { pid, workDoneToken } = params as PageoutParams;
      if (this.pageoutError) {
        throw this.pageoutError;
      }
      const process = this.processes.find(p => p.pid === pid)!;
      const total = process.diskBacked.bytes;
      this.notificationReceived.emit({
        method: Methods.progress,
        params: {
          token: workDoneToken,
          value: {
            kind: 'report',
            bytesDone: total / 2,
            bytesTotal: total,
            percentage: 50
          }
        }
      });
      const result: PageoutResult = {
        pid,
        bytesWritten: total,
        durationMs: 210,
        residentBefore: total,
        residentAfter: 0
      };
      return result as T;
    }
    throw new Error(`unexpected method ${method}`);
  }

  /** The requests of `method` so far, in order. */
  requestsOf(method: string): { method: string; params?: unknown }[] {
    return this.requests.filter(r => r.method === method);
  }

  /** The pids of the page-outs requested so far, in order. */
  pageoutPids(): number[] {
    return this.requestsOf(Methods.processPageout).map(
      r => (r.params as PageoutParams).pid
    );
  }
}

/** A kernel process with `bytes` disk-backed in `count` allocations. */
export function processInfo(
  pid: number,
  kernelId: string,
  bytes: number,
  count: number
): ProcessInfo {
  return {
    pid,
    startTime: 1000 + pid,
    uid: 1000,
    kernelId,
    label: 'Python 3 (ipykernel)',
    command: 'python -m ipykernel_launcher',
    swapDir: '/var/tmp/swap',
    diskBacked: { bytes, count },
    peakBytes: bytes,
    updatedAt: Date.now()
  };
}

/** The server's state of kernel `id`: BigMaac on, idle, unless `bigmaac` says. */
export function kernelState(
  id: string,
  bigmaac: Partial<IKernelState['bigmaac']> = {}
): IKernelState {
  return {
    id,
    name: 'python3',
    bigmaac: { enabled: true, reason: '', executionState: 'idle', ...bigmaac }
  };
}

/** A `process/get` answer's additions: residency and allocations. */
export function measured(
  resident: number,
  dirty: number,
  allocations: { address: number; size: number; resident?: number }[] = []
) {
  return {
    residency: { resident, dirty, measuredAt: 1 },
    counters: { diskReserved: 96 * MIB },
    allocationsTotal: allocations.length,
    allocations: allocations.map(a => ({
      createdAt: Date.now() - 5000,
      tier: 'big',
      dirty: 0,
      ...a
    }))
  };
}

/** The model over empty fake sessions and agent; the server says `states`. */
export function setupModel(
  states: IKernelState[] = [],
  options: Partial<BigmaacModel.IOptions> = {}
) {
  const sessions = new FakeSessions();
  const agent = new FakeAgent();
  const model = new BigmaacModel({
    sessions: sessions as unknown as Session.IManager,
    agent,
    fetchKernelStates: async () => states,
    ...options
  });
  return { sessions, agent, model };
}

/**
 * `setupModel` with one notebook per entry of `diskBacked`: a.ipynb,
 * b.ipynb, … in sessions s1, s2, … on kernels k1, k2, …, each kernel with one
 * process (pid 11, 12, …) holding that many bytes in one allocation, or none
 * for 0. Not refreshed yet.
 */
export function setupKernels(
  diskBacked: number[],
  states: IKernelState[] = [],
  options: Partial<BigmaacModel.IOptions> = {}
) {
  const fixture = setupModel(states, options);
  diskBacked.forEach((_, i) =>
    fixture.sessions.add(
      `s${i + 1}`,
      `${String.fromCharCode(97 + i)}.ipynb`,
      `k${i + 1}`
    )
  );
  fixture.agent.processes = diskBacked.map((bytes, i) =>
    processInfo(11 + i, `k${i + 1}`, bytes, bytes > 0 ? 1 : 0)
  );
  return fixture;
}
