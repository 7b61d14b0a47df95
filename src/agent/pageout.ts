/**
 * Page-outs: at most one per process at a time, each running on the addon's worker
 * thread, with progress and cancellation.
 */
import { PageoutResult } from '../common/protocol';
import { loadAddon, PageoutProgressEvent } from './addon';

/** Raised when a page-out of the same process is already running in this agent. */
export class PageoutRunningError extends Error {
  readonly code = 'EBUSY_PAGEOUT';
  constructor(pid: number) {
    super(`a page-out of process ${pid} is already running`);
    this.name = 'PageoutRunningError';
  }
}

export interface PageoutOptions {
  onProgress?: (progress: PageoutProgressEvent) => void;
  /** Registers the function that cancels this page-out. */
  onCancellable?: (cancel: () => void) => void;
}

export class PageoutManager {
  private readonly running = new Map<number, () => void>();

  /** Pids with a page-out in flight. */
  get active(): number[] {
    return [...this.running.keys()];
  }

  /** Pages `pid` out; rejects with the addon's errors or PageoutRunningError. */
  async pageout(pid: number, options: PageoutOptions = {}): Promise<PageoutResult> {
    if (this.running.has(pid)) {
      throw new PageoutRunningError(pid);
    }
    const job = loadAddon().pageout(pid, options.onProgress);
    this.running.set(pid, () => job.cancel());
    options.onCancellable?.(() => job.cancel());
    try {
      const result = await job.promise;
      return {
        pid: result.pid,
        bytesWritten: result.bytesWritten,
        durationMs: result.durationMs,
        residentBefore: result.residentBefore,
        residentAfter: result.residentAfter
      };
    } finally {
      this.running.delete(pid);
    }
  }

  /** Cancels every page-out in flight (used at shutdown). */
  cancelAll(): void {
    for (const cancel of this.running.values()) {
      cancel();
    }
  }
}
