/**
 * Loads the native addon `bigmaac.node` and declares its API (docs/architecture.md §3).
 *
 * The addon is the only code in Node that touches a stats segment. It copies each
 * segment in C and hands back plain objects, so nothing here reads live shared memory.
 */
import { existsSync } from 'fs';
import { join, resolve } from 'path';

import type { AllocationInfo, ProcessCounters, ProcessInfo } from '../common/protocol';

/**
 * One process's stats, copied out of its segment: what the agent reports (ProcessInfo)
 * plus what only the segment knows. Times are ms since the Unix epoch.
 */
export interface ProcessSnapshot extends ProcessInfo {
  /** Filesystem type of the swap directory ("ext4", "tmpfs", ...). */
  swapFs: string;
  /** The swap directory is RAM (tmpfs, ramfs): nothing is saved. */
  swapOnRam: boolean;
  /** BIGMAAC_MIN_BIGMAAC_SIZE in effect. */
  minBigSize: number;
  createdAt: number;
  /** Refreshed by the process at least every second while it lives. */
  heartbeatAt: number;
  /** Dirty bytes the library keeps its swap files under (BIGMAAC_DIRTY_BUDGET, else a
   * quarter of the memory cgroup's limit); 0: no budget. */
  dirtyBudget: number;
}

/** What readProcess adds: cumulative counters and the largest live allocations. */
export interface ProcessDetails extends ProcessSnapshot {
  counters: ProcessCounters;
  /** Live allocations in all; `allocations` holds the largest ones (up to 1024). */
  allocationsTotal: number;
  allocations: AllocationInfo[];
  /** Write-backs the dirty budget started. */
  budgetWritebacks: number;
  /** Most dirty swap-file bytes the budget's checks saw. */
  dirtyPeak: number;
}

/** Residency of one of the largest live allocations. */
export interface AllocationResidency {
  address: number;
  size: number;
  /** Its swap-file range in the page cache (mapped or not). */
  resident: number;
  /** Of which dirty or under write-back. */
  dirty: number;
}

/**
 * What `residency(pid)` resolves to: measured by the process itself, on request, with
 * cachestat(2). Page-cache bytes of its disk-backed memory: what a page-out can give back.
 * Not RSS (which misses dirty cache no longer mapped) and not the cgroup's charge.
 */
export interface ResidencyResult {
  pid: number;
  /** All live disk-backed allocations, not just the listed ones. */
  resident: number;
  dirty: number;
  /** False on kernels without cachestat (< 6.5): `dirty` is then 0, not measured. */
  dirtyKnown: boolean;
  /** When the process measured (ms since the Unix epoch). */
  measuredAt: number;
  /** What the measurement cost the process. */
  durationMs: number;
  allocationsTotal: number;
  /** The largest live allocations (up to 1024), largest first. */
  allocations: AllocationResidency[];
}

export interface PageoutProgressEvent {
  bytesDone: number;
  bytesTotal: number;
}

export interface AddonPageoutResult {
  pid: number;
  bytesWritten: number;
  durationMs: number;
  residentBefore: number;
  residentAfter: number;
}

export interface PageoutJob {
  promise: Promise<AddonPageoutResult>;
  /** Asks the worker to stop; the promise then rejects with code ECANCELLED. */
  cancel(): void;
}

/** Codes of the errors the addon throws (`error.code`). */
export type AddonErrorCode =
  | 'ENOENT_PROCESS'
  | 'EPERM'
  | 'EINCOMPATIBLE'
  | 'EBUSY_PAGEOUT'
  | 'ETORN'
  | 'ECANCELLED'
  | 'ETIMEDOUT'
  | 'EINVAL'
  | 'EUNSAFE_DIR'
  | 'EIO';

/**
 * The addon's exports. `dir` overrides the segment directory for one call; without it the
 * reader uses BIGMAAC_SEGMENT_DIR or its default, which `segmentDir()` reports.
 */
export interface BigmaacAddon {
  segmentDir(): string;
  /** Live processes by pid; stale segments are removed, unreadable ones left out. */
  listProcesses(dir?: string): ProcessSnapshot[];
  /** One process, with counters and its largest allocations; throws with a `.code`. */
  readProcess(pid: number, dir?: string): ProcessDetails;
  /** Runs on a worker thread; errors reject the promise with a `.code`. */
  pageout(
    pid: number,
    onProgress?: ((progress: PageoutProgressEvent) => void) | null,
    dir?: string
  ): PageoutJob;
  /**
   * Asks the process to measure its residency now and resolves to the answer; runs on a
   * worker thread. Needs the same rights as a page-out (the owner or root). Rejects with
   * ENOENT_PROCESS, EPERM, EINCOMPATIBLE, or ETIMEDOUT when no answer comes within 5 s
   * (a stopped process). During a page-out the answer comes between its chunks.
   */
  residency(pid: number, dir?: string): Promise<ResidencyResult>;
  /** The segment layout version this build reads. */
  segmentVersion: number;
}

/** Raised when the addon cannot be found or loaded. */
export class AddonLoadError extends Error {
  readonly code = 'ENOADDON';
  constructor(message: string) {
    super(message);
    this.name = 'AddonLoadError';
  }
}

/** True when `error` came from the addon: checked by shape, its realm differs under jest. */
export function isAddonError(error: unknown): error is Error & { code: AddonErrorCode } {
  return (
    typeof error === 'object' &&
    error !== null &&
    typeof (error as { code?: unknown }).code === 'string' &&
    typeof (error as { message?: unknown }).message === 'string'
  );
}

/**
 * Where to look for the addon, in order: BIGMAAC_ADDON, next to the bundle, then the
 * repository's build output (from the bundle in python/jupyterlab_bigmaac/_bundled, or
 * from the sources in src/agent).
 */
export function addonCandidates(env: NodeJS.ProcessEnv = process.env): string[] {
  if (env.BIGMAAC_ADDON) {
    return [resolve(env.BIGMAAC_ADDON)];
  }
  // The repository root is two levels up from src/agent and three from the bundle.
  const repositoryBuilds = [resolve(__dirname, '..', '..'), resolve(__dirname, '..', '..', '..')]
    .filter(root => existsSync(join(root, 'native')))
    .map(root => join(root, 'native', 'build', 'bigmaac.node'));
  return [join(__dirname, 'bigmaac.node'), ...repositoryBuilds];
}

let loaded: BigmaacAddon | undefined;

/** The addon, loaded once. Throws AddonLoadError with the paths tried. */
export function loadAddon(): BigmaacAddon {
  if (loaded) {
    return loaded;
  }
  const candidates = addonCandidates();
  const path = candidates.find(candidate => existsSync(candidate));
  if (!path) {
    throw new AddonLoadError(
      `the BigMaac addon is missing (looked for ${candidates.join(', ')}); ` +
        'build it with `make addon` or set BIGMAAC_ADDON'
    );
  }
  // process.dlopen rather than require: the path is only known at run time and the
  // bundler must leave it alone.
  const module = { exports: {} as BigmaacAddon };
  try {
    process.dlopen(module, path);
  } catch (error) {
    throw new AddonLoadError(`cannot load the BigMaac addon ${path}: ${(error as Error).message}`);
  }
  loaded = module.exports;
  return loaded;
}
