/**
 * Memory cgroups, read from their files (v1 `memory` controller or the v2 unified
 * hierarchy): where a process is, how much the cgroup is charged against its limit, and how
 * many processes its OOM killer has killed.
 */
import { existsSync, readFileSync } from 'fs';
import { join } from 'path';

import { ContainerMemory } from '../common/protocol';

const CGROUP_ROOT = '/sys/fs/cgroup';
const V1_MEMORY_ROOT = join(CGROUP_ROOT, 'memory');
/** Where the v2 hierarchy lives: alone at the root, or beside v1 ("hybrid"). */
const V2_ROOTS = [CGROUP_ROOT, join(CGROUP_ROOT, 'unified')];
/** v1 reports "no limit" as a page-rounded LONG_MAX; anything this large is none. */
const NO_LIMIT = 2 ** 62;

export interface MemoryCgroup {
  version: 1 | 2;
  /** Its directory under /sys/fs/cgroup. */
  path: string;
}

export interface MemoryUsage {
  usage: number;
  /** Undefined when the cgroup has no limit. */
  limit: number | undefined;
}

function readText(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

function readNumber(path: string): number | undefined {
  const text = readText(path)?.trim();
  return text !== undefined && /^\d+$/.test(text) ? Number(text) : undefined;
}

/**
 * The memory cgroup of `pid` ('self' for the agent), from /proc/PID/cgroup; undefined when
 * the process is gone or its cgroup cannot be found here.
 */
export function memoryCgroupOf(pid: number | 'self'): MemoryCgroup | undefined {
  const text = readText(`/proc/${pid}/cgroup`);
  if (text === undefined) {
    return undefined;
  }
  let unified: string | undefined;
  for (const line of text.split('\n')) {
    const [, controllers, path] = line.split(/:(.*?):/);
    if (path === undefined) {
      continue;
    }
    if (controllers.split(',').includes('memory')) {
      const directory = join(V1_MEMORY_ROOT, path);
      return existsSync(join(directory, 'memory.usage_in_bytes'))
        ? { version: 1, path: directory }
        : undefined;
    }
    if (controllers === '') {
      unified = path;
    }
  }
  if (unified === undefined) {
    return undefined;
  }
  for (const root of V2_ROOTS) {
    const directory = join(root, unified);
    if (existsSync(join(directory, 'memory.events'))) {
      return { version: 2, path: directory };
    }
  }
  return undefined;
}

/** What the cgroup is charged now and its limit; undefined when unreadable. */
export function memoryUsage(cgroup: MemoryCgroup): MemoryUsage | undefined {
  const [usageFile, limitFile] =
    cgroup.version === 1
      ? ['memory.usage_in_bytes', 'memory.limit_in_bytes']
      : ['memory.current', 'memory.max'];
  const usage = readNumber(join(cgroup.path, usageFile));
  if (usage === undefined) {
    return undefined;
  }
  const limit = readNumber(join(cgroup.path, limitFile));
  return { usage, limit: limit !== undefined && limit < NO_LIMIT ? limit : undefined };
}

/**
 * How many processes the cgroup's OOM killer has killed: `oom_kill` in memory.oom_control
 * (v1) or memory.events (v2). Undefined when the kernel does not count them.
 */
export function oomKillCount(cgroup: MemoryCgroup): number | undefined {
  const file = cgroup.version === 1 ? 'memory.oom_control' : 'memory.events';
  const match = /^oom_kill (\d+)$/m.exec(readText(join(cgroup.path, file)) ?? '');
  return match ? Number(match[1]) : undefined;
}

/**
 * The cgroup's usage and limit as the protocol reports them (`memory/get`, `stats/update`):
 * two small files read; null without a cgroup or when they cannot be read.
 */
export function containerMemory(cgroup: MemoryCgroup | undefined): ContainerMemory | null {
  const charged = cgroup ? memoryUsage(cgroup) : undefined;
  if (!cgroup || !charged) {
    return null;
  }
  return {
    usage: charged.usage,
    limit: charged.limit ?? null,
    source: cgroup.version === 1 ? 'cgroup-v1' : 'cgroup-v2'
  };
}
