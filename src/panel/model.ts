/**
 * The BigMaac panel's model: running kernels joined with what the agent knows
 * about their processes, refreshed on a timer and on session changes.
 *
 * It knows nothing of the DOM; views listen to `changed` and read `rows`.
 */

import { Kernel, Session } from '@jupyterlab/services';
import { UUID } from '@lumino/coreutils';
import { IDisposable, DisposableDelegate } from '@lumino/disposable';
import { ISignal, Signal } from '@lumino/signaling';

import {
  Methods,
  PageoutParams,
  PageoutProgress,
  PageoutResult,
  ProcessInfo,
  ProcessesListResult,
  ProgressParams
} from '../common/protocol';
import { IAgentNotification, IRequestOptions } from './agentClient';
import { formatBytes, formatDuration } from './format';
import { IKernelBigmaacState, IKernelState } from './serverApi';

/** The default refresh interval, in milliseconds. */
export const DEFAULT_REFRESH_INTERVAL = 2000;

/** The shortest refresh interval the model accepts, in milliseconds. */
export const MIN_REFRESH_INTERVAL = 500;

/** How long a refresh waits for `processes/list`, in milliseconds. */
const LIST_TIMEOUT = 15_000;

/** What the model needs of the agent: requests and notifications. */
export interface IAgentConnection {
  request<T>(
    method: string,
    params?: unknown,
    options?: IRequestOptions
  ): Promise<T>;
  readonly notificationReceived: ISignal<any, IAgentNotification>;
}

/** The page-out state of one kernel, as the panel shows it. */
export type PageoutState =
  | { phase: 'idle' }
  | { phase: 'running'; bytesDone: number; bytesTotal: number }
  | { phase: 'done'; message: string; detail: string; result: PageoutResult }
  | { phase: 'error'; message: string };

/** One row of the panel: a running kernel. */
export interface IKernelRow {
  readonly kernelId: string;
  /** The notebook's (or console's) name, or a short kernel id without session. */
  readonly name: string;
  /** The session's path, empty without session. */
  readonly path: string;
  /** The kernelspec name, e.g. `python3`. */
  readonly kernelName: string;
  /** BigMaac's state from the server, `null` while unknown. */
  readonly bigmaac: IKernelBigmaacState | null;
  /** The kernel's processes under the library (the kernel and its children). */
  readonly processes: readonly ProcessInfo[];
  /** Live disk-backed bytes and allocations, summed over `processes`. */
  readonly diskBacked: { bytes: number; count: number };
  readonly pageout: PageoutState;
}

/**
 * The model behind the BigMaac panel.
 */
export class BigmaacModel implements IDisposable {
  constructor(options: BigmaacModel.IOptions) {
    this._sessions = options.sessions;
    this._kernels = options.kernels ?? null;
    this._agent = options.agent;
    this._fetchKernelStates = options.fetchKernelStates;
    this.refreshInterval = options.refreshInterval ?? DEFAULT_REFRESH_INTERVAL;
    this._sessions.runningChanged.connect(this._onRunningChanged, this);
    this._kernels?.runningChanged.connect(this._onRunningChanged, this);
    this._agent.notificationReceived.connect(this._onNotification, this);
  }

  /** Emitted after every refresh and every page-out state change. */
  get changed(): ISignal<this, void> {
    return this._changed;
  }

  /** The rows, sorted by name then kernel id. */
  get rows(): readonly IKernelRow[] {
    return this._rows;
  }

  /** Why the agent could not be asked at the last refresh; empty when it answered. */
  get agentError(): string {
    return this._agentError;
  }

  /** Why `GET /bigmaac/kernels` failed at the last refresh; empty when it answered. */
  get serverError(): string {
    return this._serverError;
  }

  /** When the last refresh finished (ms since the epoch), 0 before the first. */
  get lastRefresh(): number {
    return this._lastRefresh;
  }

  /** Milliseconds between refreshes while someone is subscribed. */
  get refreshInterval(): number {
    return this._refreshInterval;
  }
  set refreshInterval(value: number) {
    const interval = Number.isFinite(value)
      ? Math.max(MIN_REFRESH_INTERVAL, value)
      : DEFAULT_REFRESH_INTERVAL;
    if (interval !== this._refreshInterval) {
      this._refreshInterval = interval;
      if (this._timer !== null) {
        this._schedule();
      }
    }
  }

  get isDisposed(): boolean {
    return this._isDisposed;
  }

  /**
   * Start refreshing on the timer until the returned disposable is disposed.
   *
   * Subscriptions are counted, so several views (the panel now, a status bar
   * item later) share one timer, and nothing is polled while nobody looks.
   */
  subscribe(): IDisposable {
    this._subscribers++;
    if (this._subscribers === 1) {
      void this.refresh();
    }
    return new DisposableDelegate(() => {
      this._subscribers--;
      if (this._subscribers === 0) {
        this._clearTimer();
      }
    });
  }

  /**
   * Refresh now. Concurrent calls share the refresh in flight, and one more
   * runs after it so that no change is missed.
   */
  refresh(): Promise<void> {
    if (this._refreshing) {
      this._refreshAgain = true;
      return this._refreshing;
    }
    this._clearTimer();
    this._refreshing = this._doRefresh().finally(() => {
      this._refreshing = null;
      if (this._isDisposed) {
        return;
      }
      if (this._refreshAgain) {
        this._refreshAgain = false;
        void this.refresh();
      } else if (this._subscribers > 0) {
        this._schedule();
      }
    });
    return this._refreshing;
  }

  /**
   * Page out every disk-backed process of a kernel, one after the other.
   *
   * Progress and the outcome go to the row's `pageout` state; the returned
   * promise never rejects.
   */
  async pageout(kernelId: string): Promise<void> {
    const row = this._rows.find(r => r.kernelId === kernelId);
    if (!row || this._pageouts.get(kernelId)?.phase === 'running') {
      return;
    }
    const pids = row.processes
      .filter(p => p.diskBacked.bytes > 0)
      .map(p => p.pid);
    if (pids.length === 0) {
      this._setPageout(kernelId, {
        phase: 'error',
        message: 'Nothing to page out: this kernel has no disk-backed memory.'
      });
      return;
    }
    const progress = new Private.PageoutProgress(row.processes, pids);
    this._setPageout(kernelId, progress.state());
    const results: PageoutResult[] = [];
    try {
      for (const pid of pids) {
        const token = `bigmaac-pageout-${UUID.uuid4()}`;
        this._progress.set(token, { kernelId, pid, tracker: progress });
        try {
          const params: PageoutParams = { pid, workDoneToken: token };
          results.push(
            // A large page-out takes as long as the disk needs; progress
            // notifications, not a timeout, show that it is alive.
            await this._agent.request<PageoutResult>(
              Methods.processPageout,
              params,
              { timeout: 0 }
            )
          );
        } finally {
          this._progress.delete(token);
        }
        progress.finish(pid);
      }
      this._setPageout(kernelId, Private.doneState(results));
    } catch (error) {
      this._setPageout(kernelId, {
        phase: 'error',
        message: `Page-out failed: ${(error as Error).message}`
      });
    }
    void this.refresh();
  }

  dispose(): void {
    if (this._isDisposed) {
      return;
    }
    this._isDisposed = true;
    this._clearTimer();
    this._progress.clear();
    Signal.clearData(this);
  }

  private async _doRefresh(): Promise<void> {
    const [processes, states] = await Promise.allSettled([
      this._agent.request<ProcessesListResult>(
        Methods.processesList,
        undefined,
        {
          timeout: LIST_TIMEOUT
        }
      ),
      this._fetchKernelStates
        ? this._fetchKernelStates()
        : Promise.resolve<IKernelState[]>([]),
      // The session manager polls slowly; ask now so renames show at once.
      this._sessions.refreshRunning()
    ]);
    if (this._isDisposed) {
      return;
    }
    this._agentError =
      processes.status === 'rejected' ? Private.reason(processes.reason) : '';
    this._serverError =
      states.status === 'rejected' ? Private.reason(states.reason) : '';
    if (processes.status === 'fulfilled') {
      this._processes = processes.value.processes ?? [];
    }
    if (states.status === 'fulfilled') {
      this._states = new Map(states.value.map(s => [s.id, s.bigmaac]));
    }
    this._lastRefresh = Date.now();
    this._rebuild();
  }

  /** Join sessions, kernels, processes and states into rows. */
  private _rebuild(): void {
    const kernels = Private.runningKernels(this._sessions, this._kernels);
    const byKernel = new Map<string, ProcessInfo[]>();
    for (const process of this._processes) {
      if (!process.kernelId) {
        continue;
      }
      const list = byKernel.get(process.kernelId) ?? [];
      list.push(process);
      byKernel.set(process.kernelId, list);
    }
    const rows: IKernelRow[] = kernels.map(kernel => {
      const processes = byKernel.get(kernel.kernelId) ?? [];
      return {
        ...kernel,
        bigmaac: this._states.get(kernel.kernelId) ?? null,
        processes,
        diskBacked: {
          bytes: processes.reduce((sum, p) => sum + p.diskBacked.bytes, 0),
          count: processes.reduce((sum, p) => sum + p.diskBacked.count, 0)
        },
        pageout: this._pageouts.get(kernel.kernelId) ?? { phase: 'idle' }
      };
    });
    rows.sort(
      (a, b) =>
        a.name.localeCompare(b.name) || a.kernelId.localeCompare(b.kernelId)
    );
    // Forget page-outs of kernels that are gone.
    const live = new Set(rows.map(r => r.kernelId));
    for (const id of [...this._pageouts.keys()]) {
      if (!live.has(id)) {
        this._pageouts.delete(id);
      }
    }
    this._rows = rows;
    this._changed.emit();
  }

  private _setPageout(kernelId: string, state: PageoutState): void {
    this._pageouts.set(kernelId, state);
    this._rows = this._rows.map(row =>
      row.kernelId === kernelId ? { ...row, pageout: state } : row
    );
    this._changed.emit();
  }

  private _onNotification(_: unknown, notification: IAgentNotification): void {
    if (notification.method !== Methods.progress) {
      return;
    }
    const params = notification.params as ProgressParams<PageoutProgress>;
    const entry = params && this._progress.get(String(params.token));
    if (!entry || !params.value) {
      return;
    }
    if (params.value.kind === 'report') {
      entry.tracker.report(
        entry.pid,
        params.value.bytesDone,
        params.value.bytesTotal
      );
      this._setPageout(entry.kernelId, entry.tracker.state());
    }
  }

  private _onRunningChanged(): void {
    if (this._subscribers > 0) {
      void this.refresh();
    }
  }

  private _schedule(): void {
    this._clearTimer();
    this._timer = setTimeout(() => {
      this._timer = null;
      void this.refresh();
    }, this._refreshInterval);
  }

  private _clearTimer(): void {
    if (this._timer !== null) {
      clearTimeout(this._timer);
      this._timer = null;
    }
  }

  private _sessions: Session.IManager;
  private _kernels: Kernel.IManager | null;
  private _agent: IAgentConnection;
  private _fetchKernelStates?: () => Promise<IKernelState[]>;
  private _refreshInterval = DEFAULT_REFRESH_INTERVAL;
  private _rows: IKernelRow[] = [];
  private _processes: ProcessInfo[] = [];
  private _states = new Map<string, IKernelBigmaacState>();
  private _pageouts = new Map<string, PageoutState>();
  private _progress = new Map<
    string,
    { kernelId: string; pid: number; tracker: Private.PageoutProgress }
  >();
  private _agentError = '';
  private _serverError = '';
  private _lastRefresh = 0;
  private _subscribers = 0;
  private _timer: ReturnType<typeof setTimeout> | null = null;
  private _refreshing: Promise<void> | null = null;
  private _refreshAgain = false;
  private _isDisposed = false;
  private _changed = new Signal<this, void>(this);
}

export namespace BigmaacModel {
  export interface IOptions {
    /** The session manager: its sessions name the kernels. */
    sessions: Session.IManager;
    /** The kernel manager, to list kernels without a session too. */
    kernels?: Kernel.IManager;
    /** The agent, usually an `AgentClient`. */
    agent: IAgentConnection;
    /** BigMaac's per-kernel state from the server (`GET /bigmaac/kernels`). */
    fetchKernelStates?: () => Promise<IKernelState[]>;
    /** Milliseconds between refreshes (at least `MIN_REFRESH_INTERVAL`). */
    refreshInterval?: number;
  }
}

namespace Private {
  type KernelIdentity = Pick<
    IKernelRow,
    'kernelId' | 'name' | 'path' | 'kernelName'
  >;

  /** Running kernels, named after their session when they have one. */
  export function runningKernels(
    sessions: Session.IManager,
    kernels: Kernel.IManager | null
  ): KernelIdentity[] {
    const found = new Map<string, KernelIdentity>();
    for (const session of sessions.running()) {
      if (session.kernel && !found.has(session.kernel.id)) {
        found.set(session.kernel.id, {
          kernelId: session.kernel.id,
          // The path follows renames; the session's name keeps the first one.
          name: baseName(session.path) || session.name,
          path: session.path,
          kernelName: session.kernel.name
        });
      }
    }
    for (const kernel of kernels?.running() ?? []) {
      if (!found.has(kernel.id)) {
        found.set(kernel.id, {
          kernelId: kernel.id,
          name: `Kernel ${kernel.id.slice(0, 8)}`,
          path: '',
          kernelName: kernel.name
        });
      }
    }
    return [...found.values()];
  }

  function baseName(path: string): string {
    return path.split('/').pop() || path;
  }

  /** A readable message from whatever a promise rejected with. */
  export function reason(error: unknown): string {
    if (error instanceof Error) {
      return error.message;
    }
    return String(error);
  }

  /** The summary of a finished page-out of one or more processes. */
  export function doneState(results: PageoutResult[]): PageoutState {
    const total: PageoutResult = {
      pid: results[0]?.pid ?? 0,
      bytesWritten: 0,
      durationMs: 0,
      residentBefore: 0,
      residentAfter: 0
    };
    for (const result of results) {
      total.bytesWritten += result.bytesWritten;
      total.durationMs += result.durationMs;
      total.residentBefore += result.residentBefore;
      total.residentAfter += result.residentAfter;
    }
    const released = Math.max(0, total.residentBefore - total.residentAfter);
    return {
      phase: 'done',
      message: `Paged out ${formatBytes(released)} in ${formatDuration(total.durationMs)}`,
      detail:
        `Wrote ${formatBytes(total.bytesWritten)} to disk; ` +
        `resident ${formatBytes(total.residentBefore)} → ${formatBytes(total.residentAfter)}`,
      result: total
    };
  }

  /** Progress over several processes, paged out one after the other. */
  export class PageoutProgress {
    constructor(processes: readonly ProcessInfo[], pids: number[]) {
      for (const pid of pids) {
        const process = processes.find(p => p.pid === pid);
        this._entries.set(pid, {
          done: 0,
          total: process?.diskBacked.bytes ?? 0
        });
      }
    }

    report(pid: number, bytesDone: number, bytesTotal: number): void {
      const entry = this._entries.get(pid);
      if (entry && Number.isFinite(bytesDone) && Number.isFinite(bytesTotal)) {
        entry.done = bytesDone;
        entry.total = bytesTotal;
      }
    }

    finish(pid: number): void {
      const entry = this._entries.get(pid);
      if (entry) {
        entry.done = entry.total;
      }
    }

    state(): PageoutState {
      let bytesDone = 0;
      let bytesTotal = 0;
      for (const entry of this._entries.values()) {
        bytesDone += entry.done;
        bytesTotal += entry.total;
      }
      return { phase: 'running', bytesDone, bytesTotal };
    }

    private _entries = new Map<number, { done: number; total: number }>();
  }
}
