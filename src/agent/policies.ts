/**
 * What the agent does on its own (docs/protocol.md, "Policies"):
 *
 * - idle page-out: a kernel idle for `idleSeconds` is paged out once, until it runs again;
 * - memory pressure (the cooperative idea of SBMA): while the agent's memory cgroup is
 *   charged above `thresholdPercent` of its limit, idle kernels are paged out, most resident
 *   first, then processes that are not kernels; never a busy kernel, nor one whose state
 *   was never reported.
 *
 * Kernel states come from the Jupyter server's `kernel/state` notifications and are matched
 * to processes by the kernel id in their segments. A kernel that turns busy cancels the
 * automatic page-outs of its processes.
 */
import { PageoutReason, Policy, ProcessInfo } from '../common/protocol';
import { MemoryCgroup, memoryCgroupOf, memoryUsage } from './cgroup';
import { debug, log } from './log';
import { copyPolicy, DEFAULT_POLICY } from './policyConfig';

/** How often the cgroup's usage is read while the pressure policy is on. */
export const PRESSURE_CHECK_MS = 1000;
/** A process that is not a kernel is paged out for pressure at most this often. */
export const PRESSURE_REPEAT_MS = 60000;
/** A kernel's process whose pressure page-out failed is tried again after this long. */
export const PRESSURE_RETRY_MS = 10000;

export interface PolicyHooks {
  /** Every live process under the library. */
  list(): ProcessInfo[];
  /** Bytes of the process's disk-backed memory in RAM; rejects when it cannot say. */
  resident(pid: number): Promise<number>;
  /**
   * Pages `pid` out and reports it (`pageout/finished`); resolves false when it failed or
   * was cancelled. `onCancellable` receives the function that cancels it.
   */
  pageout(
    process: ProcessInfo,
    reason: PageoutReason,
    onCancellable: (cancel: () => void) => void
  ): Promise<boolean>;
}

interface KernelActivity {
  idle: boolean;
  /** When it last turned idle, ms since the Unix epoch. */
  idleSince: number;
  /**
   * Grows whenever the kernel starts running or turns idle anew. Automatic page-outs
   * belong to the period in which they were decided and stop once it has ended.
   */
  period: number;
  /** Its processes paged out (by either policy) in this period: not again until it runs. */
  pagedOut: Set<number>;
  /** Its processes whose pressure page-out failed in this period, and when. */
  pressureFailedAt: Map<number, number>;
  /** The idle round of this period has run (or was decided): it runs once per period. */
  idleRoundDone: boolean;
  timer?: NodeJS.Timeout;
  /** Cancels the automatic page-outs of its processes in flight. */
  running: Set<() => void>;
  /** The last of its automatic page-outs queued: they run one at a time, never alongside. */
  queue: Promise<unknown>;
}

export class PolicyEngine {
  private policy = copyPolicy(DEFAULT_POLICY);
  private readonly kernels = new Map<string, KernelActivity>();
  /** Processes that are not kernels: when pressure last paged each out. */
  private readonly pressurePagedAt = new Map<number, number>();
  private readonly cgroup: MemoryCgroup | undefined = memoryCgroupOf('self');
  private pressureTimer: NodeJS.Timeout | undefined;
  private pressureRound: Promise<void> | undefined;
  private started = false;

  constructor(private readonly hooks: PolicyHooks) {}

  get current(): Policy {
    return copyPolicy(this.policy);
  }

  /** Starts acting (after `initialize`). */
  start(): void {
    this.started = true;
    this.apply();
  }

  stop(): void {
    this.started = false;
    for (const kernel of this.kernels.values()) {
      clearTimeout(kernel.timer);
      this.cancelRunning(kernel);
    }
    this.setPressureTimer(false);
  }

  set(policy: Policy): Policy {
    this.policy = copyPolicy(policy);
    debug(`policy ${JSON.stringify(this.policy)}`);
    if (this.started) {
      this.apply();
    }
    return this.current;
  }

  /** A `kernel/state` notification. */
  kernelState(kernelId: string, state: string): void {
    let kernel = this.kernels.get(kernelId);
    if (state === 'dead') {
      if (kernel) {
        this.endPeriod(kernel);
        this.kernels.delete(kernelId);
      }
      return;
    }
    if (!kernel) {
      kernel = {
        idle: false,
        idleSince: 0,
        period: 0,
        pagedOut: new Set(),
        pressureFailedAt: new Map(),
        idleRoundDone: false,
        running: new Set(),
        queue: Promise.resolve()
      };
      this.kernels.set(kernelId, kernel);
    }
    if (state === 'idle') {
      if (!kernel.idle) {
        this.endPeriod(kernel);
        kernel.idle = true;
        kernel.idleSince = Date.now();
        this.scheduleIdle(kernelId, kernel);
      }
      return;
    }
    // Busy, starting, restarting...: it runs (or will) and must not be paged out now.
    // Any such state re-arms the idle page-out, even a blip such as the panel's silent
    // probe of variables: the agent cannot tell which cells touched memory.
    this.endPeriod(kernel);
    kernel.idle = false;
  }

  /** Ends the kernel's current period: its timer stops and its page-outs in flight too. */
  private endPeriod(kernel: KernelActivity): void {
    kernel.period += 1;
    kernel.pagedOut.clear();
    kernel.pressureFailedAt.clear();
    kernel.idleRoundDone = false;
    clearTimeout(kernel.timer);
    kernel.timer = undefined;
    this.cancelRunning(kernel);
  }

  private apply(): void {
    for (const [kernelId, kernel] of this.kernels) {
      this.scheduleIdle(kernelId, kernel);
    }
    this.setPressureTimer(this.policy.pressure.enabled);
  }

  private cancelRunning(kernel: KernelActivity): void {
    for (const cancel of kernel.running) {
      cancel();
    }
    kernel.running.clear();
  }

  private scheduleIdle(kernelId: string, kernel: KernelActivity): void {
    clearTimeout(kernel.timer);
    kernel.timer = undefined;
    const { enabled, idleSeconds } = this.policy.idlePageout;
    if (!this.started || !enabled || !kernel.idle || kernel.idleRoundDone) {
      return;
    }
    const period = kernel.period;
    const delay = Math.max(0, kernel.idleSince + idleSeconds * 1000 - Date.now());
    kernel.timer = setTimeout(() => void this.idleReached(kernelId, kernel, period), delay);
    kernel.timer.unref();
  }

  private async idleReached(kernelId: string, kernel: KernelActivity, period: number) {
    kernel.timer = undefined;
    if (!this.inPeriod(kernelId, kernel, period) || kernel.idleRoundDone) {
      return;
    }
    kernel.idleRoundDone = true;
    let processes: ProcessInfo[];
    try {
      processes = this.hooks.list().filter(p => p.kernelId === kernelId);
    } catch (error) {
      log(`idle page-out of kernel ${kernelId}: ${(error as Error).message}`);
      return;
    }
    for (const process of processes) {
      await this.kernelPageout(kernelId, kernel, period, process, 'idle');
    }
  }

  /** True while `period` is the kernel's current one and it is idle and still known. */
  private inPeriod(kernelId: string, kernel: KernelActivity, period: number): boolean {
    return kernel.idle && kernel.period === period && this.kernels.get(kernelId) === kernel;
  }

  /**
   * Pages out one process of an idle kernel, after the kernel's automatic page-outs
   * queued before it, unless its idle period ended meanwhile or the process was paged out
   * in it already. Resolves true when it was paged out (now or before).
   */
  private kernelPageout(
    kernelId: string,
    kernel: KernelActivity,
    period: number,
    process: ProcessInfo,
    reason: PageoutReason
  ): Promise<boolean> {
    const run = kernel.queue.then(async () => {
      if (!this.started || !this.inPeriod(kernelId, kernel, period)) {
        return false;
      }
      if (kernel.pagedOut.has(process.pid)) {
        return true;
      }
      const ok = await this.pageoutFor(kernel, process, reason);
      if (kernel.period === period) {
        if (ok) {
          kernel.pagedOut.add(process.pid);
          kernel.pressureFailedAt.delete(process.pid);
        } else if (reason === 'pressure') {
          kernel.pressureFailedAt.set(process.pid, Date.now());
        }
      }
      return ok;
    });
    kernel.queue = run.catch(() => undefined);
    return run;
  }

  /** One automatic page-out, cancelled if the kernel turns busy meanwhile. */
  private async pageoutFor(
    kernel: KernelActivity | undefined,
    process: ProcessInfo,
    reason: PageoutReason
  ): Promise<boolean> {
    let cancel: (() => void) | undefined;
    try {
      return await this.hooks.pageout(process, reason, fn => {
        cancel = fn;
        kernel?.running.add(fn);
      });
    } finally {
      if (cancel) {
        kernel?.running.delete(cancel);
      }
    }
  }

  // ---------------------------------------------------------------- memory pressure

  private setPressureTimer(on: boolean): void {
    const wanted = on && this.started && this.cgroup !== undefined;
    if (!wanted) {
      clearInterval(this.pressureTimer);
      this.pressureTimer = undefined;
      return;
    }
    if (!this.pressureTimer) {
      this.pressureTimer = setInterval(() => this.checkPressure(), PRESSURE_CHECK_MS);
      this.pressureTimer.unref();
      this.checkPressure();
    }
  }

  /** Bytes above the threshold now; 0 when under it or when the cgroup has no limit. */
  private excess(): number {
    const usage = this.cgroup ? memoryUsage(this.cgroup) : undefined;
    if (!usage || usage.limit === undefined) {
      return 0;
    }
    const threshold = (usage.limit * this.policy.pressure.thresholdPercent) / 100;
    return Math.max(0, usage.usage - threshold);
  }

  /** Starts a round unless one runs: rounds never overlap, which is the rate limit. */
  private checkPressure(): void {
    if (this.pressureRound || !this.policy.pressure.enabled || this.excess() === 0) {
      return;
    }
    this.pressureRound = this.relievePressure()
      .catch(error => log(`memory pressure: ${(error as Error).message}`))
      .finally(() => (this.pressureRound = undefined));
  }

  private async relievePressure(): Promise<void> {
    const candidates = await this.pressureCandidates();
    debug(`memory pressure: ${candidates.length} candidate(s)`);
    for (const { process, kernel } of candidates) {
      if (!this.started || !this.policy.pressure.enabled || this.excess() === 0) {
        return;
      }
      if (kernel) {
        // Skipped inside when the kernel turned busy since the candidates were chosen.
        await this.kernelPageout(process.kernelId, kernel, kernel.period, process, 'pressure');
      } else {
        this.pressurePagedAt.set(process.pid, Date.now());
        await this.pageoutFor(undefined, process, 'pressure');
      }
    }
  }

  /** The process's last pressure page-out in this idle period failed less than a retry ago. */
  private failedLately(kernel: KernelActivity, process: ProcessInfo): boolean {
    const at = kernel.pressureFailedAt.get(process.pid);
    return at !== undefined && Date.now() - at < PRESSURE_RETRY_MS;
  }

  /**
   * Idle kernels not yet paged out, most resident first; then processes that are not
   * kernels and were not paged out for pressure lately, most resident first.
   */
  private async pressureCandidates(): Promise<
    { process: ProcessInfo; kernel: KernelActivity | undefined }[]
  > {
    const now = Date.now();
    for (const [pid, at] of this.pressurePagedAt) {
      if (now - at > PRESSURE_REPEAT_MS) {
        this.pressurePagedAt.delete(pid);
      }
    }
    const chosen = this.hooks
      .list()
      .map(process => ({
        process,
        kernel: process.kernelId ? this.kernels.get(process.kernelId) : undefined
      }))
      // A kernel whose state was never reported may be busy: left alone.
      .filter(({ process, kernel }) =>
        kernel
          ? kernel.idle && !kernel.pagedOut.has(process.pid) && !this.failedLately(kernel, process)
          : !process.kernelId && !this.pressurePagedAt.has(process.pid)
      );
    const measured = await Promise.all(
      chosen.map(async candidate => ({
        ...candidate,
        resident: await this.hooks
          .resident(candidate.process.pid)
          .catch(() => candidate.process.diskBacked.bytes)
      }))
    );
    return measured
      .filter(candidate => candidate.resident > 0)
      .sort((a, b) => Number(!!b.kernel) - Number(!!a.kernel) || b.resident - a.resident);
  }
}
