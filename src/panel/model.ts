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
  ContainerMemory,
  ErrorCodes,
  HistoryGetResult,
  InitializeResult,
  MemoryGetResult,
  Methods,
  PageoutParams,
  PageoutProgress,
  PageoutResult,
  ProcessDetails,
  ProcessGetResult,
  ProcessResidency,
  ProcessInfo,
  ProcessesListResult,
  ProgressParams
} from '../common/protocol';
import { IAgentNotification, IRequestOptions } from './agentClient';
import { isPageoutFinished, isProcessExited, residencyOf } from './agentEvents';
import { IChartPoint, TimeSeries } from './chart';
import { formatBytes, formatDuration } from './format';
import {
  IKernelBigmaacState,
  IKernelState,
  INotebookToggle,
  ISwapSpace
} from './serverApi';
import { isPythonLanguage, IVariableBuffer, variablesIn } from './variables';

/** The default refresh interval, in milliseconds. */
export const DEFAULT_REFRESH_INTERVAL = 2000;

/** The shortest refresh interval the model accepts, in milliseconds. */
export const MIN_REFRESH_INTERVAL = 500;

/** How long a refresh waits for `processes/list`, in milliseconds. */
const LIST_TIMEOUT = 15_000;

/** A busy kernel's residency is measured again after this long, ms. */
const BUSY_REMEASURE_INTERVAL = 10_000;

/** Samples kept per chart (150 at the default 2 s: five minutes). */
const HISTORY_CAPACITY = 150;

/** What the model needs of the agent: requests and notifications. */
export interface IAgentConnection {
  request<T>(
    method: string,
    params?: unknown,
    options?: IRequestOptions
  ): Promise<T>;
  readonly notificationReceived: ISignal<any, IAgentNotification>;
  /** The agent's `initialize` answer on the current connection, for its capabilities. */
  readonly serverInfo?: InitializeResult | null;
}

/** The page-out state of one kernel, as the panel shows it. */
export type PageoutState =
  | { phase: 'idle' }
  | { phase: 'running'; bytesDone: number; bytesTotal: number }
  | { phase: 'done'; message: string; detail: string; result: PageoutResult }
  | { phase: 'cancelled'; message: string }
  | { phase: 'error'; message: string };

/** The last page-out the agent finished for a kernel (any client, any reason). */
export interface ILastPageout {
  /** ms since the Unix epoch. */
  at: number;
  reason: 'request' | 'idle' | 'pressure';
  ok: boolean;
  /** Bytes of RAM released, when it succeeded. */
  released: number;
  error: string;
}

/** One disk-backed allocation of an expanded kernel. */
export interface IAllocationRow {
  pid: number;
  address: number;
  size: number;
  createdAt: number;
  tier: 'big' | 'fry';
  /** Bytes of it in RAM and dirty; `null` when the agent does not measure them. */
  resident: number | null;
  dirty: number | null;
  /** The kernel's variables whose buffer starts in it (Python kernels). */
  variables: IVariableBuffer[];
}

/** What the panel knows of an expanded kernel's variables. */
export type VariablesState =
  | { status: 'unsupported'; language: string }
  | { status: 'busy' }
  | { status: 'loading' }
  | { status: 'ready'; variables: IVariableBuffer[]; at: number }
  | { status: 'error'; message: string };

/** The details of an expanded kernel. */
export interface IKernelDetails {
  /** Largest first, over all the kernel's processes. */
  allocations: IAllocationRow[];
  /** Live allocations in all, listed or not. */
  allocationsTotal: number;
  variables: VariablesState;
  /** Why `process/get` failed, empty when it answered. */
  error: string;
}

/** A kernel the OOM killer killed, for the panel's banner. */
export interface IOomKill {
  /** Identifies this kill (kernel and launch), for dismissal. */
  key: string;
  kernelId: string;
  name: string;
  /** The notebook's path, empty when the kernel has no notebook. */
  path: string;
  /** Whether BigMaac was on for the killed kernel. */
  bigmaacOn: boolean;
  /** Its threshold, e.g. `32M`, when known. */
  minBigmaacSize: string;
  /**
   * BigMaac was on with a threshold of 1M or less, the lowest the panel
   * sets: a restart with a lower one is not offered, as it would not help.
   */
  atLowestThreshold: boolean;
  /** What the last fix attempt said; empty before one. */
  status: string;
}

/** How the panel can fix an OOM-killed kernel's settings. */
export type OomFix = 'enable' | 'lower-threshold';

/** An open notebook, through its BigMaac toggle (src/toggle). */
export interface IOpenNotebook {
  /** Record the choice in the notebook's metadata and the server's registry. */
  setChoice(toggle: {
    enabled: boolean;
    min_bigmaac_size?: string;
  }): Promise<void>;
  /** Restart its kernel through its session context. */
  restartKernel(): Promise<void>;
}

/** The whole container: every kernel summed. */
export interface IContainerSummary {
  diskBacked: number;
  /** `null` while some disk-backed process has no residency measured. */
  resident: number | null;
  kernels: number;
  /** The container's memory cgroup from the agent; `null` when unknown or none. */
  memory: ContainerMemory | null;
  /** The swap directory's disk from the server; `null` when not reported. */
  swap: ISwapSpace | null;
  history: readonly IChartPoint[];
}

/** How the panel orders its rows (the `sortBy` panel setting). */
export type RowOrder = 'name' | 'diskBacked';

/** One row of the panel: a running kernel. */
export interface IKernelRow {
  readonly kernelId: string;
  /** The notebook's (or console's) name, or a short kernel id without session. */
  readonly name: string;
  /** The session's path, empty without session. */
  readonly path: string;
  /** The kernelspec name, e.g. `python3`. */
  readonly kernelName: string;
  /** The kernelspec's language, e.g. `python`; empty when unknown. */
  readonly language: string;
  /** BigMaac's state from the server, `null` while unknown. */
  readonly bigmaac: IKernelBigmaacState | null;
  /** The kernel's processes under the library (the kernel and its children). */
  readonly processes: readonly ProcessInfo[];
  /** Live disk-backed bytes and allocations, summed over `processes`. */
  readonly diskBacked: { bytes: number; count: number };
  /** Of those, bytes in RAM and dirty; `null` when not measured. */
  readonly residency: ProcessResidency | null;
  /**
   * The swap directory, bytes BigMaac reserved there, and its disk's free
   * space and size (`null`: not known yet, or not the server's swap directory).
   */
  readonly swap: {
    dir: string;
    reserved: number | null;
    free: number | null;
    total: number | null;
  };
  readonly pageout: PageoutState;
  readonly lastPageout: ILastPageout | null;
  readonly expanded: boolean;
  /** Allocations and variables, while expanded. */
  readonly details: IKernelDetails | null;
  /** Disk-backed and resident bytes over time, since the panel first saw the kernel. */
  readonly history: readonly IChartPoint[];
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
    this._fetchSwapSpace = options.fetchSwapSpace ?? null;
    this._languageOf = options.languageOf ?? (() => '');
    this._inspectVariables = options.inspectVariables ?? null;
    this._setNotebookToggle = options.setNotebookToggle ?? null;
    this._restartKernel = options.restartKernel ?? null;
    this._openNotebook = options.openNotebook ?? null;
    this._kernelStatus = options.kernelStatus ?? null;
    this.refreshInterval = options.refreshInterval ?? DEFAULT_REFRESH_INTERVAL;
    this._sessions.runningChanged.connect(this._onRunningChanged, this);
    this._kernels?.runningChanged.connect(this._onRunningChanged, this);
    this._agent.notificationReceived.connect(this._onNotification, this);
  }

  /** Emitted after every refresh and every page-out state change. */
  get changed(): ISignal<this, void> {
    return this._changed;
  }

  /** The rows, in `sortBy` order, then by name and kernel id. */
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

  /** Kernels killed by the OOM killer that the user has not dismissed. */
  get oomKills(): readonly IOomKill[] {
    return this._oomKills;
  }

  /** Every kernel summed, and its history. */
  get container(): IContainerSummary {
    return this._container;
  }

  /** When the last refresh finished (ms since the epoch), 0 before the first. */
  get lastRefresh(): number {
    return this._lastRefresh;
  }

  /** The order of `rows`: by name, or by disk-backed bytes, largest first. */
  get sortBy(): RowOrder {
    return this._sortBy;
  }
  set sortBy(value: RowOrder) {
    if (value !== this._sortBy) {
      this._sortBy = value;
      this._rebuild();
    }
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
   * Subscriptions are counted, so several views (the panel, the status bar)
   * share one timer, and nothing is polled while nobody looks. While every
   * subscriber wants only the totals (`totalsOnly`, the status bar with the
   * panel closed), a refresh asks the agent for `processes/list` and
   * measures only the processes that changed: no server requests, no
   * container memory, no history.
   */
  subscribe(options: { totalsOnly?: boolean } = {}): IDisposable {
    const full = !options.totalsOnly;
    this._subscribers++;
    if (full) {
      this._fullSubscribers++;
    }
    if (this._subscribers === 1 || (full && this._fullSubscribers === 1)) {
      void this._refresh(full ? 'full' : 'totals');
    }
    return new DisposableDelegate(() => {
      this._subscribers--;
      if (full) {
        this._fullSubscribers--;
      }
      if (this._subscribers === 0) {
        this._clearTimer();
      }
    });
  }

  /**
   * Refresh everything now. Concurrent calls share the refresh in flight,
   * and one more runs after it so that no change is missed.
   */
  refresh(): Promise<void> {
    return this._refresh('full');
  }

  private _refresh(kind: 'full' | 'totals'): Promise<void> {
    if (this._refreshing) {
      if (kind === 'full' || this._refreshAgain === 'full') {
        this._refreshAgain = 'full';
      } else {
        this._refreshAgain = 'totals';
      }
      // A caller asking for everything waits for the refresh that has it.
      return kind === 'full' && this._refreshingKind === 'totals'
        ? this._refreshing.then(() => this._refreshing ?? undefined)
        : this._refreshing;
    }
    this._clearTimer();
    this._refreshingKind = kind;
    this._refreshing = (
      kind === 'full' ? this._doRefresh() : this._doTotalsRefresh()
    ).finally(() => {
      this._refreshing = null;
      if (this._isDisposed) {
        return;
      }
      const again = this._refreshAgain;
      this._refreshAgain = null;
      if (again) {
        void this._refresh(again);
      } else if (this._subscribers > 0) {
        this._schedule();
      }
    });
    return this._refreshing;
  }

  /** What a refresh on the timer or on a change does for the subscribers. */
  private _refreshForSubscribers(): void {
    if (this._subscribers > 0) {
      void this._refresh(this._fullSubscribers > 0 ? 'full' : 'totals');
    }
  }

  /**
   * Page out every disk-backed process of a kernel, one after the other.
   *
   * Progress and the outcome go to the row's `pageout` state; the returned
   * promise never rejects. `cancelPageout` stops it.
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
    const abort = new AbortController();
    this._aborts.set(kernelId, abort);
    this._setPageout(kernelId, progress.state());
    const results: PageoutResult[] = [];
    try {
      for (const pid of pids) {
        if (abort.signal.aborted) {
          break;
        }
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
              { timeout: 0, signal: abort.signal }
            )
          );
        } finally {
          this._progress.delete(token);
        }
        progress.finish(pid);
      }
      this._setPageout(
        kernelId,
        abort.signal.aborted
          ? Private.cancelledState(results)
          : Private.doneState(results)
      );
    } catch (error) {
      this._setPageout(
        kernelId,
        (error as any)?.rpcCode === ErrorCodes.RequestCancelled
          ? Private.cancelledState(results)
          : {
              phase: 'error',
              message: `Page-out failed: ${(error as Error).message}`
            }
      );
    } finally {
      this._aborts.delete(kernelId);
    }
    void this.refresh();
  }

  /** Cancel a kernel's running page-out; what was written stays written. */
  cancelPageout(kernelId: string): void {
    this._aborts.get(kernelId)?.abort();
  }

  /**
   * Page out every idle kernel that has disk-backed memory, one after the
   * other. Busy kernels are left alone: each kernel's state is checked again
   * just before its page-out, as the last refresh may be seconds old and an
   * earlier page-out may have taken a while. Resolves with how many were
   * paged out.
   */
  async pageoutIdle(): Promise<number> {
    const candidates = this._rows.filter(
      row =>
        row.diskBacked.bytes > 0 &&
        row.bigmaac?.executionState === 'idle' &&
        row.pageout.phase !== 'running'
    );
    let count = 0;
    for (const row of candidates) {
      if (!(await this._isIdleNow(row.kernelId))) {
        continue;
      }
      await this.pageout(row.kernelId);
      count++;
    }
    return count;
  }

  /**
   * Expand or collapse a kernel. Expanding measures its allocations now and,
   * for an idle Python kernel, asks which variables own them.
   */
  async setExpanded(kernelId: string, expanded: boolean): Promise<void> {
    if (expanded === this._expanded.has(kernelId)) {
      return;
    }
    if (!expanded) {
      this._expanded.delete(kernelId);
      this._variables.delete(kernelId);
      this._rebuild();
      return;
    }
    this._expanded.add(kernelId);
    this._rebuild();
    await this.refresh();
    await this.inspectVariables(kernelId);
  }

  /**
   * Ask a Python kernel which variables own its disk-backed memory.
   *
   * Never while the kernel is busy: the question would queue behind the
   * user's cell, and page-in nothing the user did not touch.
   */
  async inspectVariables(kernelId: string): Promise<void> {
    const row = this._rows.find(r => r.kernelId === kernelId);
    if (!row || !this._expanded.has(kernelId)) {
      return;
    }
    const language = row.language || row.kernelName;
    if (!isPythonLanguage(language)) {
      this._setVariables(kernelId, { status: 'unsupported', language });
      return;
    }
    if (!this._inspectVariables) {
      this._setVariables(kernelId, {
        status: 'error',
        message: 'this page cannot talk to kernels'
      });
      return;
    }
    const state = row.bigmaac?.executionState;
    if (state && state !== 'idle') {
      this._setVariables(kernelId, { status: 'busy' });
      return;
    }
    this._setVariables(kernelId, { status: 'loading' });
    try {
      const variables = await this._inspectVariables(kernelId, row.kernelName);
      this._setVariables(kernelId, {
        status: 'ready',
        variables,
        at: Date.now()
      });
    } catch (error) {
      this._setVariables(kernelId, {
        status: 'error',
        message: Private.reason(error)
      });
    }
  }

  /** Hide an OOM banner until that kernel is OOM-killed again. */
  dismissOom(key: string): void {
    this._forgetOom(key);
    this._rebuild();
  }

  /**
   * Fix the settings of an OOM-killed kernel's notebook and restart it:
   * turn BigMaac on, or lower its threshold to a quarter (not below 1M).
   * An open notebook gets the choice in its metadata too (through its
   * toggle, so its toolbar agrees) and restarts through its session; a
   * closed one gets it in the server's registry, which applies at the
   * restart.
   */
  async fixOom(key: string, fix: OomFix): Promise<void> {
    const kill = this._oomKills.find(k => k.key === key);
    if (!kill) {
      return;
    }
    const setStatus = (status: string) => {
      this._oomStatus.set(key, status);
      this._rebuild();
    };
    if (!kill.path || !this._setNotebookToggle || !this._restartKernel) {
      setStatus('This kernel has no notebook whose settings could change.');
      return;
    }
    const lower =
      fix === 'lower-threshold'
        ? Private.lowerThreshold(kill.minBigmaacSize)
        : null;
    if (fix === 'lower-threshold' && lower === null) {
      setStatus(
        `The threshold is already ${kill.minBigmaacSize}, the lowest this panel sets: a restart would change nothing.`
      );
      return;
    }
    const toggle: { enabled: boolean; min_bigmaac_size?: string } =
      lower === null
        ? { enabled: true }
        : { enabled: true, min_bigmaac_size: lower };
    try {
      setStatus('Restarting…');
      const notebook = this._openNotebook?.(kill.path) ?? null;
      if (notebook) {
        await notebook.setChoice(toggle);
        await notebook.restartKernel();
      } else {
        await this._setNotebookToggle(kill.path, toggle);
        await this._restartKernel(kill.kernelId);
      }
      this._forgetOom(key);
      this._oomStatus.delete(key);
      await this.refresh();
    } catch (error) {
      setStatus(`Could not apply the change: ${Private.reason(error)}`);
    }
  }

  /**
   * Whether a kernel is idle now: its connection's status when this page
   * has one, else the server's state asked afresh (it samples every 100 ms).
   */
  private async _isIdleNow(kernelId: string): Promise<boolean> {
    const live = this._kernelStatus?.(kernelId) ?? null;
    if (live !== null) {
      return live === 'idle';
    }
    if (!this._fetchKernelStates) {
      return this._states.get(kernelId)?.executionState === 'idle';
    }
    try {
      const states = await this._fetchKernelStates();
      return (
        states.find(s => s.id === kernelId)?.bigmaac.executionState === 'idle'
      );
    } catch {
      return false;
    }
  }

  dispose(): void {
    if (this._isDisposed) {
      return;
    }
    this._isDisposed = true;
    this._clearTimer();
    this._progress.clear();
    for (const abort of this._aborts.values()) {
      abort.abort();
    }
    Signal.clearData(this);
  }

  private async _doRefresh(): Promise<void> {
    const [processes, states, swapSpace] = await Promise.allSettled([
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
      this._fetchSwapSpace
        ? this._fetchSwapSpace()
        : Promise.resolve<ISwapSpace | null>(null),
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
    // A failed status request is not worth an alert: the numbers just go.
    this._swapSpace =
      swapSpace.status === 'fulfilled' ? swapSpace.value : null;
    if (processes.status === 'fulfilled') {
      this._containerMemory = await this._readContainerMemory();
      await this._backfill();
      await this._measure();
      if (this._isDisposed) {
        return;
      }
    }
    this._lastRefresh = Date.now();
    this._rebuild(true);
  }

  /**
   * The totals only: one `processes/list`, and `process/get` for the
   * processes that changed since they were measured.
   */
  private async _doTotalsRefresh(): Promise<void> {
    try {
      const result = await this._agent.request<ProcessesListResult>(
        Methods.processesList,
        undefined,
        { timeout: LIST_TIMEOUT }
      );
      if (this._isDisposed) {
        return;
      }
      this._agentError = '';
      this._processes = result.processes ?? [];
      await this._measure();
    } catch (error) {
      this._agentError = Private.reason(error);
    }
    if (this._isDisposed) {
      return;
    }
    this._lastRefresh = Date.now();
    // Not a sample for the charts: the container's memory was not read.
    this._rebuild();
  }

  /** The container's memory, from agents that report it; `null` otherwise. */
  private async _readContainerMemory(): Promise<ContainerMemory | null> {
    if (!this._agent.serverInfo?.capabilities?.containerMemory) {
      return null;
    }
    try {
      const result = await this._agent.request<MemoryGetResult>(
        Methods.memoryGet,
        undefined,
        { timeout: LIST_TIMEOUT }
      );
      return result.container ?? null;
    } catch {
      return null;
    }
  }

  /**
   * Start the chart of a kernel seen for the first time with the agent's
   * history of its process (disk-backed bytes only: residency is measured on
   * request, never sampled). Kernels with several processes start empty, as
   * their samples would not line up.
   */
  private async _backfill(): Promise<void> {
    const byKernel = new Map<string, ProcessInfo[]>();
    for (const process of this._processes) {
      if (process.kernelId && !this._histories.has(process.kernelId)) {
        byKernel.set(process.kernelId, [
          ...(byKernel.get(process.kernelId) ?? []),
          process
        ]);
      }
    }
    for (const [kernelId, processes] of byKernel) {
      const series = this._history(kernelId);
      if (processes.length !== 1) {
        continue;
      }
      try {
        const history = await this._agent.request<HistoryGetResult>(
          Methods.historyGet,
          { pid: processes[0].pid },
          { timeout: LIST_TIMEOUT }
        );
        for (const sample of history.samples ?? []) {
          series.push({
            at: sample.at,
            diskBacked: sample.diskBackedBytes,
            resident: null
          });
        }
      } catch {
        // An agent without history: the chart starts now.
      }
    }
  }

  /**
   * Ask `process/get` for the processes whose residency may have changed:
   * their stats changed, their kernel went idle again or is busy and was
   * measured a while ago, a page-out finished, or their kernel is expanded.
   * Measuring walks the process's mappings, so unchanged processes are not
   * measured again on every refresh.
   */
  private async _measure(): Promise<void> {
    const live = new Set<number>();
    for (const process of this._processes) {
      live.add(process.pid);
      if (process.diskBacked.count === 0 && process.diskBacked.bytes === 0) {
        this._measured.delete(process.pid);
        continue;
      }
      const state = this._states.get(process.kernelId);
      const key = [
        process.startTime,
        process.diskBacked.bytes,
        process.diskBacked.count,
        process.updatedAt,
        state?.lastIdleAt ?? '',
        this._pageoutEpoch.get(process.pid) ?? 0
      ].join(':');
      const previous = this._measured.get(process.pid);
      const stale =
        !previous ||
        previous.key !== key ||
        this._expanded.has(process.kernelId) ||
        (state?.executionState === 'busy' &&
          Date.now() - previous.at > BUSY_REMEASURE_INTERVAL);
      if (!stale) {
        continue;
      }
      try {
        const result = await this._agent.request<ProcessGetResult>(
          Methods.processGet,
          { pid: process.pid },
          { timeout: LIST_TIMEOUT }
        );
        this._measured.set(process.pid, {
          key,
          at: Date.now(),
          details: result.process,
          error: ''
        });
      } catch (error) {
        // The process may have exited since the list; keep what was known.
        this._measured.set(process.pid, {
          key: '',
          at: Date.now(),
          details: previous?.details ?? null,
          error: Private.reason(error)
        });
      }
    }
    for (const pid of [...this._measured.keys()]) {
      if (!live.has(pid)) {
        this._measured.delete(pid);
      }
    }
  }

  /** Join sessions, kernels, processes and states into rows. */
  private _rebuild(sample = false): void {
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
    const now = Date.now();
    const rows: IKernelRow[] = kernels.map(kernel => {
      const processes = byKernel.get(kernel.kernelId) ?? [];
      const diskBacked = {
        bytes: processes.reduce((sum, p) => sum + p.diskBacked.bytes, 0),
        count: processes.reduce((sum, p) => sum + p.diskBacked.count, 0)
      };
      const measured = processes.map(p => this._measured.get(p.pid));
      const residency = Private.sumResidency(processes, measured);
      const bigmaac = this._states.get(kernel.kernelId) ?? null;
      const history = this._history(kernel.kernelId);
      if (sample) {
        history.push({
          at: now,
          diskBacked: diskBacked.bytes,
          resident: residency?.resident ?? null
        });
      }
      const expanded = this._expanded.has(kernel.kernelId);
      return {
        ...kernel,
        language: this._languageOf(kernel.kernelName),
        bigmaac,
        processes,
        diskBacked,
        residency,
        swap: Private.swapOf(
          processes[0]?.swapDir || bigmaac?.settings?.swap_dir || '',
          Private.sumReserved(processes, measured),
          this._swapSpace
        ),
        pageout: this._pageouts.get(kernel.kernelId) ?? { phase: 'idle' },
        lastPageout: this._lastPageouts.get(kernel.kernelId) ?? null,
        expanded,
        details: expanded
          ? Private.details(
              processes,
              measured,
              this._variables.get(kernel.kernelId) ?? { status: 'loading' }
            )
          : null,
        history: history.points
      };
    });
    rows.sort(
      (a, b) =>
        (this._sortBy === 'diskBacked'
          ? b.diskBacked.bytes - a.diskBacked.bytes
          : 0) ||
        a.name.localeCompare(b.name) ||
        a.kernelId.localeCompare(b.kernelId)
    );
    // Forget what belongs to kernels that are gone.
    const live = new Set(rows.map(r => r.kernelId));
    for (const map of [
      this._pageouts,
      this._histories,
      this._lastPageouts,
      this._variables
    ] as Map<string, unknown>[]) {
      for (const id of [...map.keys()]) {
        if (!live.has(id)) {
          map.delete(id);
        }
      }
    }
    for (const id of [...this._expanded]) {
      if (!live.has(id)) {
        this._expanded.delete(id);
      }
    }
    this._rows = rows;
    this._oomKills = this._collectOomKills(rows);
    this._container = this._summarize(rows, sample ? now : 0);
    this._changed.emit();
  }

  /**
   * Hide a kill for good: the server's record of it and the agent's report
   * of the same kill (kept under another key) both.
   */
  private _forgetOom(key: string): void {
    this._dismissedOom.add(key);
    const kill = this._oomKills.find(k => k.key === key);
    if (kill) {
      this._exitOom.delete(kill.kernelId);
    }
  }

  private _history(kernelId: string): TimeSeries {
    let series = this._histories.get(kernelId);
    if (!series) {
      series = new TimeSeries(HISTORY_CAPACITY);
      this._histories.set(kernelId, series);
    }
    return series;
  }

  private _summarize(rows: IKernelRow[], sampleAt: number): IContainerSummary {
    let diskBacked = 0;
    let resident: number | null = 0;
    for (const row of rows) {
      diskBacked += row.diskBacked.bytes;
      if (row.diskBacked.bytes > 0) {
        resident =
          resident === null || row.residency === null
            ? null
            : resident + row.residency.resident;
      }
    }
    const memory = this._containerMemory;
    if (sampleAt) {
      this._containerHistory.push({
        at: sampleAt,
        diskBacked,
        resident,
        containerUsage: memory?.usage ?? null,
        containerLimit: memory?.limit ?? null
      });
    }
    return {
      diskBacked,
      resident,
      kernels: rows.length,
      memory,
      swap: this._swapSpace,
      history: this._containerHistory.points
    };
  }

  /** OOM kills known from the server's kernel records and the agent's exits. */
  private _collectOomKills(rows: IKernelRow[]): IOomKill[] {
    const kills: IOomKill[] = [];
    for (const row of rows) {
      const state = row.bigmaac;
      const launches = state?.launches ?? 0;
      let key = '';
      if (state?.oomKilled) {
        key = `${row.kernelId}:launch-${launches}`;
      } else if (state?.previousOomKilled) {
        key = `${row.kernelId}:launch-${launches - 1}`;
      } else if (this._exitOom.has(row.kernelId)) {
        key = `${row.kernelId}:exit-${this._exitOom.get(row.kernelId)}`;
      }
      if (!key || this._dismissedOom.has(key)) {
        continue;
      }
      kills.push({
        key,
        kernelId: row.kernelId,
        name: row.name,
        path: row.path || state?.notebookPath || '',
        bigmaacOn: state?.enabled ?? false,
        minBigmaacSize: state?.settings?.min_bigmaac_size ?? '',
        atLowestThreshold:
          !!state?.enabled &&
          !!state.settings?.min_bigmaac_size &&
          Private.lowerThreshold(state.settings.min_bigmaac_size) === null,
        status: this._oomStatus.get(key) ?? ''
      });
    }
    return kills;
  }

  private _setPageout(kernelId: string, state: PageoutState): void {
    this._pageouts.set(kernelId, state);
    this._rows = this._rows.map(row =>
      row.kernelId === kernelId ? { ...row, pageout: state } : row
    );
    this._changed.emit();
  }

  private _setVariables(kernelId: string, state: VariablesState): void {
    this._variables.set(kernelId, state);
    this._rebuild();
  }

  private _onNotification(_: unknown, notification: IAgentNotification): void {
    switch (notification.method) {
      case Methods.progress:
        this._onProgress(
          notification.params as ProgressParams<PageoutProgress>
        );
        break;
      case Methods.pageoutFinished:
        this._onPageoutFinished(notification.params);
        break;
      case Methods.processExited:
        this._onProcessExited(notification.params);
        break;
    }
  }

  private _onProgress(params: ProgressParams<PageoutProgress>): void {
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

  private _onPageoutFinished(params: unknown): void {
    if (!isPageoutFinished(params)) {
      return;
    }
    this._pageoutEpoch.set(
      params.pid,
      (this._pageoutEpoch.get(params.pid) ?? 0) + 1
    );
    const kernelId =
      params.kernelId ||
      this._processes.find(p => p.pid === params.pid)?.kernelId;
    if (!kernelId) {
      return;
    }
    const result = params.result;
    this._lastPageouts.set(kernelId, {
      at: Number(params.at) || Date.now(),
      reason: params.reason,
      ok: params.ok,
      released: result
        ? Math.max(0, result.residentBefore - result.residentAfter)
        : 0,
      error: params.error?.message ?? ''
    });
    this._rebuild();
    this._refreshForSubscribers();
  }

  private _onProcessExited(params: unknown): void {
    if (!isProcessExited(params) || params.cause !== 'oom-killed') {
      return;
    }
    const kernelId =
      params.kernelId ||
      this._processes.find(p => p.pid === params.pid)?.kernelId;
    if (kernelId) {
      this._exitOom.set(kernelId, Number(params.at) || Date.now());
      this._rebuild();
    }
  }

  private _onRunningChanged(): void {
    this._refreshForSubscribers();
  }

  private _schedule(): void {
    this._clearTimer();
    this._timer = setTimeout(() => {
      this._timer = null;
      this._refreshForSubscribers();
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
  private _fetchSwapSpace: (() => Promise<ISwapSpace | null>) | null;
  private _swapSpace: ISwapSpace | null = null;
  private _containerMemory: ContainerMemory | null = null;
  private _languageOf: (kernelName: string) => string;
  private _inspectVariables: BigmaacModel.IOptions['inspectVariables'] | null;
  private _setNotebookToggle: BigmaacModel.IOptions['setNotebookToggle'] | null;
  private _restartKernel: BigmaacModel.IOptions['restartKernel'] | null;
  private _openNotebook: BigmaacModel.IOptions['openNotebook'] | null;
  private _kernelStatus: BigmaacModel.IOptions['kernelStatus'] | null;
  private _refreshInterval = DEFAULT_REFRESH_INTERVAL;
  private _sortBy: RowOrder = 'name';
  private _rows: IKernelRow[] = [];
  private _processes: ProcessInfo[] = [];
  private _states = new Map<string, IKernelBigmaacState>();
  private _pageouts = new Map<string, PageoutState>();
  private _aborts = new Map<string, AbortController>();
  private _lastPageouts = new Map<string, ILastPageout>();
  /** Page-outs finished per pid: a new one makes its residency stale. */
  private _pageoutEpoch = new Map<number, number>();
  private _measured = new Map<number, Private.IMeasurement>();
  private _expanded = new Set<string>();
  private _variables = new Map<string, VariablesState>();
  private _histories = new Map<string, TimeSeries>();
  private _containerHistory = new TimeSeries(HISTORY_CAPACITY);
  private _container: IContainerSummary = {
    diskBacked: 0,
    resident: null,
    kernels: 0,
    memory: null,
    swap: null,
    history: []
  };
  private _oomKills: IOomKill[] = [];
  /** Kernel id → when the agent saw its process OOM-killed. */
  private _exitOom = new Map<string, number>();
  private _dismissedOom = new Set<string>();
  private _oomStatus = new Map<string, string>();
  private _progress = new Map<
    string,
    { kernelId: string; pid: number; tracker: Private.PageoutProgress }
  >();
  private _agentError = '';
  private _serverError = '';
  private _lastRefresh = 0;
  private _subscribers = 0;
  /** Subscribers that want everything, not only the totals. */
  private _fullSubscribers = 0;
  private _timer: ReturnType<typeof setTimeout> | null = null;
  private _refreshing: Promise<void> | null = null;
  private _refreshingKind: 'full' | 'totals' = 'full';
  /** The refresh to run once the one in flight is done, if any. */
  private _refreshAgain: 'full' | 'totals' | null = null;
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
    /** The swap directory's disk (`swap` of `GET /bigmaac/status`). */
    fetchSwapSpace?: () => Promise<ISwapSpace | null>;
    /** Milliseconds between refreshes (at least `MIN_REFRESH_INTERVAL`). */
    refreshInterval?: number;
    /** The language of a kernelspec (`python`, `R`...), empty when unknown. */
    languageOf?: (kernelName: string) => string;
    /** Ask a Python kernel which variables own large buffers (`variables.ts`). */
    inspectVariables?: (
      kernelId: string,
      kernelName: string
    ) => Promise<IVariableBuffer[]>;
    /** Record a notebook's BigMaac choice on the server (`PUT /bigmaac/notebooks`). */
    setNotebookToggle?: (
      path: string,
      toggle: INotebookToggle
    ) => Promise<void>;
    /** Restart a kernel, so a changed setting applies. */
    restartKernel?: (kernelId: string) => Promise<void>;
    /** The open notebook at an API path, `null` when it is not open. */
    openNotebook?: (path: string) => IOpenNotebook | null;
    /**
     * The status of this page's connection to a kernel (`idle`, `busy`...),
     * `null` when the page has none.
     */
    kernelStatus?: (kernelId: string) => string | null;
  }
}

namespace Private {
  /**
   * A row's swap line: the server's free-space numbers apply only when the
   * kernel swaps into the directory they were measured for.
   */
  export function swapOf(
    dir: string,
    reserved: number | null,
    space: ISwapSpace | null
  ): IKernelRow['swap'] {
    const same = !!dir && space?.dir === dir;
    return {
      dir,
      reserved,
      free: same ? space!.free : null,
      total: same ? space!.total : null
    };
  }

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

  /** The last `process/get` answer about one process. */
  export interface IMeasurement {
    /** What the process looked like when measured; another key is stale. */
    key: string;
    at: number;
    details: ProcessDetails | null;
    error: string;
  }

  /** A kernel's residency, `null` unless every disk-backed process has one. */
  export function sumResidency(
    processes: ProcessInfo[],
    measured: (IMeasurement | undefined)[]
  ): ProcessResidency | null {
    const total: ProcessResidency = {
      resident: 0,
      dirty: 0,
      dirtyKnown: true,
      measuredAt: 0
    };
    for (let i = 0; i < processes.length; i++) {
      if (processes[i].diskBacked.bytes === 0) {
        continue;
      }
      const residency = residencyOf(measured[i]?.details);
      if (!residency) {
        return null;
      }
      total.resident += residency.resident;
      total.dirty += residency.dirty;
      total.dirtyKnown = total.dirtyKnown && residency.dirtyKnown;
      total.measuredAt = Math.max(total.measuredAt, residency.measuredAt);
    }
    return total;
  }

  /** Bytes reserved in the swap directory, `null` until every process was measured. */
  export function sumReserved(
    processes: ProcessInfo[],
    measured: (IMeasurement | undefined)[]
  ): number | null {
    let reserved = 0;
    for (let i = 0; i < processes.length; i++) {
      if (processes[i].diskBacked.bytes === 0) {
        continue;
      }
      const details = measured[i]?.details;
      if (!details?.counters) {
        return null;
      }
      reserved += details.counters.diskReserved;
    }
    return reserved;
  }

  /** An expanded kernel's allocations, largest first, with their variables. */
  export function details(
    processes: ProcessInfo[],
    measured: (IMeasurement | undefined)[],
    variables: VariablesState
  ): IKernelDetails {
    const allocations: IAllocationRow[] = [];
    let total = 0;
    const errors: string[] = [];
    // Variables are addresses in the kernel process itself (the first one).
    const kernelPid = processes[0]?.pid;
    const buffers = variables.status === 'ready' ? variables.variables : [];
    processes.forEach((process, i) => {
      const details = measured[i]?.details;
      if (measured[i]?.error) {
        errors.push(measured[i]!.error);
      }
      if (!details) {
        return;
      }
      total += details.allocationsTotal ?? 0;
      for (const a of details.allocations ?? []) {
        allocations.push({
          pid: process.pid,
          address: a.address,
          size: a.size,
          createdAt: a.createdAt,
          tier: a.tier,
          resident: Number.isFinite(a.resident) ? a.resident! : null,
          dirty: Number.isFinite(a.dirty) ? a.dirty! : null,
          variables: process.pid === kernelPid ? variablesIn(a, buffers) : []
        });
      }
    });
    allocations.sort((a, b) => b.size - a.size || a.address - b.address);
    return {
      allocations,
      allocationsTotal: total,
      variables,
      error: errors.join('; ')
    };
  }

  /**
   * A quarter of a size setting such as `32M`, at least 1M, as the server
   * takes it; `null` when the size is 1M or less already.
   */
  export function lowerThreshold(size: string): string | null {
    const match = /^\s*(\d+)\s*([KMGTkmgt]?)\s*$/.exec(size || '');
    const units = ['', 'K', 'M', 'G', 'T'];
    const bytes = match
      ? Number(match[1]) * 1024 ** units.indexOf(match[2].toUpperCase())
      : 32 * 1024 ** 2;
    if (bytes <= 1024 ** 2) {
      return null;
    }
    const mib = Math.max(1, Math.floor(bytes / 4 / 1024 ** 2));
    return `${mib}M`;
  }

  /** A page-out stopped by the user, with what it did before. */
  export function cancelledState(results: PageoutResult[]): PageoutState {
    const done = results.length > 0 ? doneState(results) : null;
    return {
      phase: 'cancelled',
      message:
        done && done.phase === 'done'
          ? `Page-out cancelled. ${done.message}`
          : 'Page-out cancelled.'
    };
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
