/**
 * Container memory from the real agent (`memory/get`, `container` in `stats/update`) against
 * the memory cgroup files of the agent's own cgroup; one test runs the agent inside a fresh
 * cgroup with a known limit (root; v1 or v2), removed afterwards.
 */
import { existsSync, readFileSync } from 'fs';
import { join } from 'path';

import { MemoryGetResult, StatsUpdateParams } from '../common/protocol';
import { MiB, recordNotifications } from './helpers';
import { CgroupFiles, cgroupFiles, useCgroupTestBed } from './helpers/memoryCgroup';

const bed = useCgroupTestBed();

/** Usage moves while the agent runs; what it reports must be this close to the file. */
const USAGE_TOLERANCE = 16 * MiB;

/** The memory cgroup files of `pid`, straight from /proc/PID/cgroup; null when it has none. */
function cgroupFilesOf(pid: number): CgroupFiles | null {
  const lines = readFileSync(`/proc/${pid}/cgroup`, 'utf8').split('\n');
  const v1 = lines.map(l => l.split(':')).find(f => f[1]?.split(',').includes('memory'));
  if (v1) {
    const dir = join('/sys/fs/cgroup/memory', v1[2]);
    return existsSync(join(dir, 'memory.usage_in_bytes')) ? cgroupFiles('cgroup-v1', dir) : null;
  }
  const v2 = lines.find(l => l.startsWith('0::'));
  const dir = v2 ? join('/sys/fs/cgroup', v2.slice(3)) : '';
  return v2 && existsSync(join(dir, 'memory.current')) ? cgroupFiles('cgroup-v2', dir) : null;
}

/** Checks a reported value against the cgroup files read just before and after it. */
function expectMatches(
  reported: MemoryGetResult['container'],
  files: CgroupFiles,
  usageBefore: number
): void {
  const usageAfter = files.usage();
  expect(reported).not.toBeNull();
  expect(reported!.source).toBe(files.source);
  expect(reported!.limit).toBe(files.limit());
  expect(reported!.usage).toBeGreaterThan(0);
  expect(reported!.usage).toBeGreaterThanOrEqual(
    Math.min(usageBefore, usageAfter) - USAGE_TOLERANCE
  );
  expect(reported!.usage).toBeLessThanOrEqual(Math.max(usageBefore, usageAfter) + USAGE_TOLERANCE);
}

describe('container memory', () => {
  it('reports the cgroup the agent runs in, or null when it has none', async () => {
    const { child, connection, init } = await bed.agent();
    expect(init.capabilities.containerMemory).toBe(true);
    const files = cgroupFilesOf(child.pid!);
    const usageBefore = files?.usage() ?? 0;
    const result = await connection.sendRequest<MemoryGetResult>('memory/get');
    expect(typeof result.measuredAt).toBe('number');
    if (files === null) {
      expect(result.container).toBeNull();
    } else {
      expectMatches(result.container, files, usageBefore);
    }
  }, 30000);

  it('reports a fresh cgroup with its limit in memory/get and every stats/update', async () => {
    const cgroup = bed.cgroup(512 * MiB, 'container');
    const { child, connection } = await bed.agent(cgroup);
    // The agent really is inside: the files it reads are the test's cgroup.
    expect(cgroupFilesOf(child.pid!)?.dir).toBe(cgroup.dir);

    let usageBefore = cgroup.usage();
    const result = await connection.sendRequest<MemoryGetResult>('memory/get');
    expect(result.container?.limit).toBe(512 * MiB);
    expectMatches(result.container, cgroup, usageBefore);

    const updates = recordNotifications<StatsUpdateParams>(connection, 'stats/update');
    usageBefore = cgroup.usage();
    await connection.sendRequest('stats/subscribe', { intervalMs: 100 });
    const update = await updates.waitFor(() => true);
    expect(update.container?.limit).toBe(512 * MiB);
    expectMatches(update.container ?? null, cgroup, usageBefore);
  }, 30000);
});
