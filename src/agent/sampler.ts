/**
 * One shared timer that samples every process's summary from the stats segments (a
 * directory read and a copy per segment, never a walk of /proc/PID/smaps). Each tick
 * records history, reports processes that appeared or went away, and sends `stats/update`
 * while anyone is subscribed.
 *
 * The timer runs at the smallest interval subscribed, and at least at a slow background
 * rate, so history and `processes/changed` keep flowing at next to no cost when nobody is
 * subscribed. `stats/update` goes out on the ticks where a subscription is due.
 */
import {
  HistoryGetResult,
  ProcessesChangedParams,
  ProcessIdentity,
  ProcessInfo,
  StatsSubscribeResult,
  StatsUpdateParams
} from '../common/protocol';
import { SampleRing } from './history';

export const MIN_INTERVAL_MS = 100;
export const MAX_INTERVAL_MS = 60000;
/** Tick interval while nobody is subscribed. */
export const BACKGROUND_INTERVAL_MS = 5000;
/** Samples kept per process: an hour at the background rate. */
export const HISTORY_CAPACITY = 720;

export interface SamplerOptions {
  /** Reads every live process; may throw (for example when the addon is missing). */
  list: () => ProcessInfo[];
  onUpdate: (params: StatsUpdateParams) => void;
  onChanged: (params: ProcessesChangedParams) => void;
  onError: (error: unknown) => void;
}

interface Tracked {
  identity: ProcessIdentity;
  history: SampleRing;
}

export function clampInterval(intervalMs: number): number {
  return Math.min(MAX_INTERVAL_MS, Math.max(MIN_INTERVAL_MS, Math.round(intervalMs)));
}

export class StatsSampler {
  /** Subscription id -> its interval, and when an update last went out. */
  private readonly subscriptions = new Map<number, { intervalMs: number; lastSentAt: number }>();
  private readonly tracked = new Map<number, Tracked>();
  private nextSubscriptionId = 1;
  private timer: NodeJS.Timeout | undefined;
  private timerIntervalMs = 0;
  /** False until the first tick: that one sets the baseline without a `processes/changed`. */
  private hasBaseline = false;
  private lastErrorMessage = '';
  /** After `stop`, nothing restarts the timer. */
  private stopped = false;

  constructor(private readonly options: SamplerOptions) {}

  /** Starts the background rate (after `initialize`). */
  start(): void {
    this.reschedule();
    this.safeTick();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) {
      clearInterval(this.timer);
      this.timer = undefined;
    }
    this.subscriptions.clear();
  }

  /** Adds a subscription; the tick taken now throws if the processes cannot be read. */
  subscribe(intervalMs: number): StatsSubscribeResult {
    const granted = clampInterval(intervalMs);
    const subscriptionId = this.nextSubscriptionId++;
    this.subscriptions.set(subscriptionId, { intervalMs: granted, lastSentAt: 0 });
    try {
      this.tick();
    } catch (error) {
      this.subscriptions.delete(subscriptionId);
      throw error;
    }
    this.reschedule();
    return { subscriptionId, intervalMs: granted };
  }

  unsubscribe(subscriptionId: number): boolean {
    const removed = this.subscriptions.delete(subscriptionId);
    this.reschedule();
    return removed;
  }

  /** The samples of a live process; undefined when no such process is known. */
  history(pid: number, sinceMs?: number): HistoryGetResult | undefined {
    if (!this.tracked.has(pid)) {
      // It may have started since the last tick: look once more before saying no.
      this.tick();
    }
    const entry = this.tracked.get(pid);
    if (!entry) {
      return undefined;
    }
    return {
      pid,
      startTime: entry.identity.startTime,
      samples: entry.history.since(sinceMs),
      capacity: entry.history.capacity
    };
  }

  /** The smallest interval subscribed; undefined when nobody is subscribed. */
  private updateInterval(): number | undefined {
    const intervals = [...this.subscriptions.values()].map(s => s.intervalMs);
    return intervals.length > 0 ? Math.min(...intervals) : undefined;
  }

  /** Ticks come at the smallest interval subscribed, and at least at the background rate. */
  private currentInterval(): number {
    return Math.min(BACKGROUND_INTERVAL_MS, this.updateInterval() ?? BACKGROUND_INTERVAL_MS);
  }

  /** Whether some subscription waits for an update (within half a tick, for timer jitter). */
  private updateDue(now: number): boolean {
    const slack = this.timerIntervalMs / 2;
    for (const subscription of this.subscriptions.values()) {
      if (now - subscription.lastSentAt >= subscription.intervalMs - slack) {
        return true;
      }
    }
    return false;
  }

  private reschedule(): void {
    const interval = this.currentInterval();
    if (this.stopped || (this.timer && interval === this.timerIntervalMs)) {
      return;
    }
    if (this.timer) {
      clearInterval(this.timer);
    }
    this.timerIntervalMs = interval;
    this.timer = setInterval(() => this.safeTick(), interval);
    // The agent lives as long as its input, not as long as its timer.
    this.timer.unref();
  }

  /** A timer tick: failures are logged (once per distinct message), never thrown. */
  private safeTick(): void {
    try {
      this.tick();
      this.lastErrorMessage = '';
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      if (message !== this.lastErrorMessage) {
        this.lastErrorMessage = message;
        this.options.onError(error);
      }
    }
  }

  private tick(): void {
    const processes = this.options.list();
    const timestamp = Date.now();
    const changes = this.track(processes, timestamp);
    if (changes && this.hasBaseline) {
      this.options.onChanged(changes);
    }
    this.hasBaseline = true;
    const intervalMs = this.updateInterval();
    if (intervalMs !== undefined && this.updateDue(timestamp)) {
      // Every client sees every update (a proxy broadcasts notifications): all are served.
      for (const subscription of this.subscriptions.values()) {
        subscription.lastSentAt = timestamp;
      }
      this.options.onUpdate({ timestamp, intervalMs, processes });
    }
  }

  /** Records a sample of each process; returns what appeared and went, or undefined. */
  private track(processes: ProcessInfo[], at: number): ProcessesChangedParams | undefined {
    const current = new Map(processes.map(info => [info.pid, info]));
    const removed: ProcessIdentity[] = [];
    for (const [pid, entry] of this.tracked) {
      // Gone, or the pid now names another process (same pid, other start time).
      if (current.get(pid)?.startTime !== entry.identity.startTime) {
        removed.push(entry.identity);
        this.tracked.delete(pid);
      }
    }
    const added: ProcessInfo[] = [];
    for (const info of processes) {
      let entry = this.tracked.get(info.pid);
      if (!entry) {
        entry = {
          identity: { pid: info.pid, startTime: info.startTime },
          history: new SampleRing(HISTORY_CAPACITY)
        };
        this.tracked.set(info.pid, entry);
        added.push(info);
      }
      entry.history.push({
        at,
        diskBackedBytes: info.diskBacked.bytes,
        diskBackedCount: info.diskBacked.count,
        peakBytes: info.peakBytes
      });
    }
    if (added.length === 0 && removed.length === 0) {
      return undefined;
    }
    const pids = processes.map(info => info.pid).sort((a, b) => a - b);
    return { timestamp: at, added, removed, pids };
  }
}
