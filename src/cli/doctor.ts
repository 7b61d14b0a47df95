/**
 * `bigmaac doctor [--dir DIR] [--json]`: checks what BigMaac relies on, on this machine and
 * in this environment, and says what to fix. Each check is a small function that returns a
 * verdict, so the rules can be tested without the machine's particulars.
 */
import { existsSync, readFileSync, statfsSync } from 'fs';
import { homedir, release } from 'os';
import { dirname, join, resolve } from 'path';

import { addonCandidates, loadAddon } from '../agent/addon';
import { CliError, ExitCode } from './errors';
import { findLibrary, nearestExisting } from './run';
import { formatBytes, formatTable, parseSize } from './units';

export type CheckStatus = 'ok' | 'warning' | 'error';

export interface CheckResult {
  name: string;
  status: CheckStatus;
  message: string;
}

/** What `doctor --json` prints. */
export interface DoctorReport {
  checks: CheckResult[];
  errors: number;
  warnings: number;
}

/** Less free disk than this in the swap directory is worth a warning. */
const LOW_DISK_BYTES = 1024 ** 3;

/** statfs magic numbers (linux/magic.h) of filesystems worth naming. */
const FILESYSTEMS: Record<number, string> = {
  0xef53: 'ext4',
  0x58465342: 'xfs',
  0x9123683e: 'btrfs',
  0x2fc12fc1: 'zfs',
  0x794c7630: 'overlay',
  0x6969: 'nfs',
  0x01021994: 'tmpfs',
  0x858458f6: 'ramfs'
};
const RAM_FILESYSTEMS = new Set(['tmpfs', 'ramfs']);

/** The swap directory the library would use in `env` (docs/architecture.md §1). */
export function swapDirectory(env: NodeJS.ProcessEnv = process.env): string {
  if (env.BIGMAAC_DIR) {
    return resolve(env.BIGMAAC_DIR);
  }
  if (env.BIGMAAC_TEMPLATE) {
    return dirname(resolve(env.BIGMAAC_TEMPLATE));
  }
  const cache = env.XDG_CACHE_HOME || join(env.HOME || homedir(), '.cache');
  return join(cache, 'bigmaac', 'swap');
}

function check(name: string, status: CheckStatus, message: string): CheckResult {
  return { name, status, message };
}

export function checkLibrary(env: NodeJS.ProcessEnv = process.env): CheckResult {
  try {
    return check('library', 'ok', findLibrary(env));
  } catch (error) {
    return check('library', 'error', (error as Error).message);
  }
}

export function checkAddon(): CheckResult {
  try {
    const addon = loadAddon();
    const path = addonCandidates().find(candidate => existsSync(candidate));
    return check('addon', 'ok', `${path} (segment layout ${addon.segmentVersion})`);
  } catch (error) {
    return check('addon', 'error', (error as Error).message);
  }
}

/** The filesystem of the swap directory: RAM is an error, low free space a warning. */
export function checkSwapDir(dir: string): CheckResult[] {
  const existing = nearestExisting(dir);
  const where = existing === dir ? dir : `${dir} (not created yet; checked ${existing})`;
  let stats: ReturnType<typeof statfsSync>;
  try {
    stats = statfsSync(existing);
  } catch (error) {
    return [check('swap dir', 'error', `${where}: ${(error as Error).message}`)];
  }
  const fs = FILESYSTEMS[stats.type] ?? `0x${stats.type.toString(16)}`;
  if (RAM_FILESYSTEMS.has(fs)) {
    // Free space on RAM is free memory: the disk check would mislead.
    return [
      check(
        'swap dir',
        'error',
        `${where} is on ${fs}, which is RAM: disk-backed memory saves nothing there; ` +
          'set BIGMAAC_DIR (or --dir) to a directory on a disk'
      )
    ];
  }
  const swap = check('swap dir', 'ok', `${where} on ${fs}`);
  const free = stats.bavail * stats.bsize;
  const disk =
    free < LOW_DISK_BYTES
      ? check(
          'free disk',
          'warning',
          `only ${formatBytes(free)} free for swap files: ` +
            'big allocations fail when the disk is full'
        )
      : check('free disk', 'ok', `${formatBytes(free)} free`);
  return [swap, disk];
}

export interface MemoryLimit {
  version: 1 | 2;
  /** Bytes; undefined when unlimited. */
  limit?: number;
  usage?: number;
  path: string;
}

function readNumber(path: string): number | undefined {
  try {
    const text = readFileSync(path, 'utf8').trim();
    return /^\d+$/.test(text) ? Number(text) : undefined;
  } catch {
    return undefined;
  }
}

/** v1 reports "no limit" as a huge number (LONG_MAX rounded down to a page). */
const V1_UNLIMITED = 2 ** 62;

/**
 * The memory cgroup of this process, from /proc/self/cgroup: the v1 memory controller when
 * it is mounted, else the v2 unified hierarchy. Undefined when neither can be read.
 */
export function memoryCgroup(root = '/sys/fs/cgroup'): MemoryLimit | undefined {
  let lines: string[];
  try {
    lines = readFileSync('/proc/self/cgroup', 'utf8').split('\n');
  } catch {
    return undefined;
  }
  const v1 = lines.map(line => line.split(':')).find(f => f[1]?.split(',').includes('memory'));
  if (v1 && existsSync(join(root, 'memory'))) {
    // Inside a cgroup namespace the mount's root is our own cgroup.
    const nested = join(root, 'memory', v1[2]);
    const path = existsSync(nested) ? nested : join(root, 'memory');
    const limit = readNumber(join(path, 'memory.limit_in_bytes'));
    return {
      version: 1,
      path,
      limit: limit !== undefined && limit < V1_UNLIMITED ? limit : undefined,
      usage: readNumber(join(path, 'memory.usage_in_bytes'))
    };
  }
  const v2 = lines.find(line => line.startsWith('0::'));
  if (v2) {
    const nested = join(root, v2.slice(3));
    const path = existsSync(join(nested, 'memory.current')) ? nested : root;
    return {
      version: 2,
      path,
      limit: readNumber(join(path, 'memory.max')), // "max" reads as undefined
      usage: readNumber(join(path, 'memory.current'))
    };
  }
  return undefined;
}

/** Bytes of swap the machine has (SwapTotal in /proc/meminfo); undefined when unreadable. */
export function systemSwapBytes(meminfo = '/proc/meminfo'): number | undefined {
  try {
    const match = /^SwapTotal:\s+(\d+) kB$/m.exec(readFileSync(meminfo, 'utf8'));
    return match ? Number(match[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}

/** Usage at or above this share of the limit is worth a warning. */
const NEAR_LIMIT = 0.9;
/** A dirty budget at or above this share of the limit leaves too little room for the rest. */
const BUDGET_SHARE = 0.5;

/**
 * The memory cgroup's limit: a warning when usage is near it, when the dirty budget set in
 * BIGMAAC_DIRTY_BUDGET is close to it or above, or when there is neither a limit nor swap
 * (the pressure policy needs a limit, and nothing but the OOM killer is left).
 */
export function checkMemoryLimit(
  cgroup = memoryCgroup(),
  env: NodeJS.ProcessEnv = process.env,
  swapBytes: number | undefined = systemSwapBytes()
): CheckResult {
  if (!cgroup) {
    return check('memory', 'warning', 'cannot read the memory cgroup of this process');
  }
  const usage = cgroup.usage === undefined ? '' : `, ${formatBytes(cgroup.usage)} in use`;
  const limit =
    cgroup.limit === undefined ? 'no memory limit' : `limit ${formatBytes(cgroup.limit)}`;
  const summary = `cgroup v${cgroup.version} ${limit}${usage} (${cgroup.path})`;
  const problems: string[] = [];
  if (cgroup.limit === undefined) {
    if (swapBytes === 0) {
      problems.push(
        'no memory limit and no swap: the pressure policy needs a limit to act on, and ' +
          "when RAM runs out only the kernel's OOM killer is left"
      );
    }
  } else {
    if (cgroup.usage !== undefined && cgroup.usage >= NEAR_LIMIT * cgroup.limit) {
      const share = Math.round((100 * cgroup.usage) / cgroup.limit);
      problems.push(
        `${share}% of the limit is in use: the OOM killer is near; ` +
          "'bigmaac pageout --all' gives disk-backed memory back"
      );
    }
    const budget = env.BIGMAAC_DIRTY_BUDGET;
    if (budget !== undefined && budget !== '' && budget !== '0') {
      let bytes: number | undefined;
      try {
        bytes = parseSize(budget);
      } catch {
        problems.push(`BIGMAAC_DIRTY_BUDGET='${budget}' is not a size`);
      }
      if (bytes !== undefined && bytes >= BUDGET_SHARE * cgroup.limit) {
        const where = bytes >= cgroup.limit ? 'at or above' : 'close to';
        problems.push(
          `BIGMAAC_DIRTY_BUDGET (${formatBytes(bytes)}) is ${where} the limit: dirty ` +
            'swap-file pages can fill the cgroup before write-back starts; leave it unset ' +
            '(a quarter of the limit) or lower it'
        );
      }
    }
  }
  if (problems.length > 0) {
    return check('memory', 'warning', `${summary}: ${problems.join('; ')}`);
  }
  return check('memory', 'ok', summary);
}

/** Kernel features the library uses, and the release that brought each. */
interface KernelFeature {
  name: string;
  since: [number, number];
  /** What lacking it means: `ok` when the library has a fallback that works as well. */
  missing: CheckStatus;
  why: string;
}
const KERNEL_FEATURES: KernelFeature[] = [
  { name: 'O_TMPFILE', since: [3, 11], missing: 'error', why: 'unlinked swap files' },
  { name: 'MADV_PAGEOUT', since: [5, 4], missing: 'warning', why: 'page-out on request' },
  {
    name: 'MADV_POPULATE_WRITE',
    since: [5, 14],
    missing: 'warning',
    why: 'fast first touch of big allocations'
  },
  {
    name: 'cachestat',
    since: [6, 5],
    missing: 'ok',
    why: 'residency with dirty bytes; mincore is used instead, dirty bytes unknown'
  }
];

/** Verdict on a kernel release string such as "6.1.0-18-amd64" (from uname -r). */
export function checkKernel(kernelRelease: string = release()): CheckResult {
  const match = /^(\d+)\.(\d+)/.exec(kernelRelease);
  if (!match) {
    return check('kernel', 'warning', `cannot read the kernel version from '${kernelRelease}'`);
  }
  const version = [Number(match[1]), Number(match[2])];
  const older = (since: [number, number]) =>
    version[0] < since[0] || (version[0] === since[0] && version[1] < since[1]);
  const missing = KERNEL_FEATURES.filter(feature => older(feature.since));
  const present = KERNEL_FEATURES.filter(feature => !older(feature.since));
  const names = present.map(feature => feature.name).join(', ');
  if (missing.length === 0) {
    return check('kernel', 'ok', `Linux ${kernelRelease}: ${names}`);
  }
  const status = missing.some(f => f.missing === 'error')
    ? 'error'
    : missing.some(f => f.missing === 'warning')
      ? 'warning'
      : 'ok';
  const lacks = missing.map(f => `${f.name} (Linux ${f.since.join('.')}, for ${f.why})`);
  const has = present.length > 0 ? `has ${names}; ` : '';
  return check('kernel', status, `Linux ${kernelRelease} ${has}lacks ${lacks.join(', ')}`);
}

/** Allocators that replace malloc the way BigMaac does. */
const ALLOCATORS = /(jemalloc|tcmalloc|mimalloc|hoard|tbbmalloc|snmalloc|rpmalloc|scudo)/i;

/**
 * Other allocators in LD_PRELOAD. `bigmaac run` and the kernel provisioner append
 * libbigmaac.so after what is there, and the first library to define malloc wins.
 */
export function checkPreload(ldPreload: string | undefined = process.env.LD_PRELOAD): CheckResult {
  const entries = (ldPreload ?? '').split(/[:\s]+/).filter(Boolean);
  const bigmaac = entries.findIndex(entry => /libbigmaac/.test(entry));
  const others = entries.filter(
    (entry, i) => ALLOCATORS.test(entry) && (bigmaac === -1 || i < bigmaac)
  );
  if (others.length > 0) {
    return check(
      'preload',
      'error',
      `LD_PRELOAD has another allocator before BigMaac (${others.join(', ')}): it serves ` +
        'malloc, so nothing is disk-backed; remove it from LD_PRELOAD'
    );
  }
  const message = entries.length > 0 ? `LD_PRELOAD=${entries.join(':')}` : 'no other preloads';
  return check('preload', 'ok', message);
}

export function runChecks(dir: string, env: NodeJS.ProcessEnv = process.env): DoctorReport {
  const checks = [
    checkLibrary(env),
    checkAddon(),
    ...checkSwapDir(dir),
    checkMemoryLimit(memoryCgroup(), env),
    checkKernel(),
    checkPreload(env.LD_PRELOAD)
  ];
  return {
    checks,
    errors: checks.filter(c => c.status === 'error').length,
    warnings: checks.filter(c => c.status === 'warning').length
  };
}

const LABELS: Record<CheckStatus, string> = { ok: 'OK', warning: 'WARN', error: 'ERROR' };

export function formatReport(report: DoctorReport): string {
  const rows = report.checks.map(c => [LABELS[c.status], c.name, c.message]);
  const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;
  const verdict =
    report.errors + report.warnings === 0
      ? 'Everything BigMaac needs is in place.'
      : `${plural(report.errors, 'error')}, ${plural(report.warnings, 'warning')}.`;
  return `${formatTable(['STATUS', 'CHECK', 'DETAILS'], rows, new Set())}\n\n${verdict}`;
}

/** Exit code 0 when no check failed (warnings allowed), 1 when one did. */
export function doctor(dirOption: string | undefined, json: boolean): void {
  if (dirOption === '') {
    throw new CliError('doctor: --dir needs a directory', ExitCode.usage);
  }
  const dir = dirOption === undefined ? swapDirectory() : resolve(dirOption);
  const report = runChecks(dir);
  process.stdout.write(json ? `${JSON.stringify(report, null, 2)}\n` : `${formatReport(report)}\n`);
  if (report.errors > 0) {
    process.exitCode = ExitCode.failure;
  }
}
