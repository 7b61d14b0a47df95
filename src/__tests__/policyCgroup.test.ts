/**
 * The memory-pressure policy and the OOM explanation inside real memory cgroups (root;
 * cgroup v1 or v2). Every cgroup is removed afterwards, its processes killed first.
 */
import { ChildProcess } from 'child_process';
import { MessageConnection } from 'vscode-jsonrpc/node';

import { PageoutFinishedParams, ProcessExitedParams, ProcessGetResult } from '../common/protocol';
import {
  allocatingScript,
  LIBRARY,
  MiB,
  PYTHON,
  recordNotifications,
  steppingScript,
  waitForOutput
} from './helpers';
import { MemoryCgroup, useCgroupTestBed } from './helpers/memoryCgroup';

const bed = useCgroupTestBed();

/**
 * Python under the library inside `cgroup`, as a kernel unless `kernelId` is undefined;
 * resolves once it said "ready".
 */
async function python(
  cgroup: MemoryCgroup,
  script: string,
  kernelId: string | undefined
): Promise<ChildProcess> {
  const child = bed.spawn(cgroup, [PYTHON, '-c', script], {
    LD_PRELOAD: LIBRARY,
    BIGMAAC_MIN_BIGMAAC_SIZE: '1M',
    ...(kernelId === undefined ? {} : { BIGMAAC_KERNEL_ID: kernelId })
  });
  await waitForOutput(child, 'ready', `python ${kernelId ?? '(not a kernel)'}`);
  return child;
}

function sleep(ms: number): Promise<void> {
  return new Promise(done => setTimeout(done, ms));
}

function kernelState(connection: MessageConnection, kernelId: string, state: string) {
  return connection.sendNotification('kernel/state', { kernelId, state });
}

/**
 * A fresh cgroup limited to `limit` with the agent inside, every policy off
 * until the test turns one on, and the agent's pageout/finished notifications.
 */
async function agentInCgroupPoliciesOff(limit: number) {
  const cgroup = bed.cgroup(limit, 'policy');
  const { connection } = await bed.agent(cgroup);
  const finished = recordNotifications<PageoutFinishedParams>(connection, 'pageout/finished');
  await connection.sendRequest('policy/set', {
    idlePageout: { enabled: false },
    pressure: { enabled: false }
  });
  return { cgroup, connection, finished };
}

describe('memory pressure', () => {
  it('pages out the idle kernel, not the busy one, until under the threshold', async () => {
    // Policies off while the kernels start: their states are not known yet.
    const { cgroup, connection, finished } = await agentInCgroupPoliciesOff(640 * MiB);
    const idle = await python(cgroup, allocatingScript(240 * MiB), 'jest-pressure-idle');
    const busy = await python(cgroup, allocatingScript(120 * MiB), 'jest-pressure-busy');
    await connection.sendNotification('kernel/state', {
      kernelId: 'jest-pressure-idle',
      state: 'idle',
      pid: idle.pid
    });
    await connection.sendNotification('kernel/state', {
      kernelId: 'jest-pressure-busy',
      state: 'busy',
      pid: busy.pid
    });
    const threshold = 0.5 * 640 * MiB;
    // Both kernels' memory is charged to the cgroup: over the threshold.
    expect(cgroup.usage()).toBeGreaterThan(threshold);
    // Nothing happened while the policy was off.
    await new Promise(done => setTimeout(done, 1500));
    expect(finished.received).toEqual([]);

    await connection.sendRequest('policy/set', {
      pressure: { enabled: true, thresholdPercent: 50 }
    });
    const notice = await finished.waitFor(p => p.pid === idle.pid);
    expect(notice).toMatchObject({ reason: 'pressure', ok: true, kernelId: 'jest-pressure-idle' });
    expect(notice.result?.residentBefore).toBeGreaterThanOrEqual(200 * MiB);
    expect(cgroup.usage()).toBeLessThan(threshold);
    // Under the threshold now, and the busy kernel was never a candidate.
    await new Promise(done => setTimeout(done, 3000));
    expect(finished.received.map(p => p.pid)).toEqual([idle.pid]);
  }, 60000);
});

describe('memory pressure order', () => {
  it('pages out idle kernels, most resident first, then other processes; never a busy one', async () => {
    const { cgroup, connection, finished } = await agentInCgroupPoliciesOff(1024 * MiB);
    // Started smallest first, so that neither pid order nor start order is the answer.
    const plain = await python(cgroup, allocatingScript(160 * MiB), undefined);
    const idleSmall = await python(cgroup, allocatingScript(100 * MiB), 'jest-order-small');
    const busy = await python(cgroup, allocatingScript(120 * MiB), 'jest-order-busy');
    const idleLarge = await python(cgroup, allocatingScript(220 * MiB), 'jest-order-large');
    await kernelState(connection, 'jest-order-small', 'idle');
    await kernelState(connection, 'jest-order-large', 'idle');
    await kernelState(connection, 'jest-order-busy', 'busy');
    // A threshold that the busy kernel alone keeps exceeded: every candidate goes.
    expect(cgroup.usage()).toBeGreaterThan(0.05 * 1024 * MiB);
    await connection.sendRequest('policy/set', {
      pressure: { enabled: true, thresholdPercent: 5 }
    });
    await finished.waitFor(p => p.pid === plain.pid);
    // Time for a wrong extra page-out (the busy kernel, or one twice) to show.
    await sleep(3000);
    expect(finished.received.map(p => [p.pid, p.reason, p.ok])).toEqual([
      [idleLarge.pid, 'pressure', true],
      [idleSmall.pid, 'pressure', true],
      [plain.pid, 'pressure', true]
    ]);
    expect(finished.received[2].kernelId).toBeUndefined();
    expect(finished.received[0].result?.residentBefore).toBeGreaterThanOrEqual(200 * MiB);
    // The busy kernel's memory is all still in RAM.
    const { process: details } = await connection.sendRequest<ProcessGetResult>('process/get', {
      pid: busy.pid
    });
    expect(details.residency?.resident).toBeGreaterThanOrEqual(120 * MiB);
  }, 90000);

  it('tries a kernel again after its pressure page-out failed', async () => {
    const { cgroup, connection, finished } = await agentInCgroupPoliciesOff(640 * MiB);
    const kernel = await python(cgroup, steppingScript(), 'jest-retry');
    const grow = async (mib: number) => {
      const grown = waitForOutput(kernel, 'grown', 'the stepping kernel');
      kernel.stdin!.write(`${mib}\n`);
      await grown;
    };
    await grow(160);
    await kernelState(connection, 'jest-retry', 'idle');
    // Stopped, the process cannot answer: the page-out fails after the library's 5 s.
    kernel.kill('SIGSTOP');
    try {
      await connection.sendRequest('policy/set', {
        pressure: { enabled: true, thresholdPercent: 10 }
      });
      await expect(finished.waitFor(p => p.pid === kernel.pid)).resolves.toMatchObject({
        reason: 'pressure',
        ok: false,
        error: { code: 'ETIMEDOUT' }
      });
    } finally {
      kernel.kill('SIGCONT');
    }
    // Continued, it drops the page-out given up on (withdrawn) and holds new memory.
    await grow(160);
    // Still idle, still over the threshold: tried again, and this time it works.
    await expect(finished.waitFor(p => p.pid === kernel.pid && p.ok)).resolves.toMatchObject({
      reason: 'pressure',
      kernelId: 'jest-retry'
    });
  }, 90000);
});

describe('OOM explanation', () => {
  it('says oom-killed for a process the cgroup OOM killer killed', async () => {
    const cgroup = bed.cgroup(128 * MiB, 'policy');
    const { connection } = await bed.agent(); // outside the cgroup: it must survive
    const exited = recordNotifications<ProcessExitedParams>(connection, 'process/exited');
    await connection.sendRequest('stats/subscribe', { intervalMs: 100 });
    // A disk-backed allocation makes it a BigMaac process; then anonymous memory (blocks
    // under the threshold) beyond the limit, which no page-out can save.
    const script = [
      'import sys',
      'kept = bytearray(4 << 20)',
      'print("ready", flush=True)',
      'sys.stdin.readline()',
      'blocks = [bytearray(512 << 10) for _ in range(2048)]',
      'sys.stdin.read()'
    ].join('\n');
    const victim = await python(cgroup, script, 'jest-oom');
    const bystander = await python(cgroup, allocatingScript(4 * MiB), 'jest-sigkill');
    // Killed by us in the same cgroup before any OOM kill: killed, not oom-killed.
    await new Promise(done => setTimeout(done, 500));
    bystander.kill('SIGKILL');
    const killed = await exited.waitFor(p => p.pid === bystander.pid);
    expect(killed).toMatchObject({ cause: 'killed', kernelId: 'jest-sigkill' });
    expect(killed.detail).toMatch(/counted no OOM kill/);

    const died = new Promise(done => victim.on('exit', (code, signal) => done(signal)));
    victim.stdin!.write('go\n');
    await expect(died).resolves.toBe('SIGKILL');
    const notice = await exited.waitFor(p => p.pid === victim.pid);
    expect(notice).toMatchObject({ cause: 'oom-killed', kernelId: 'jest-oom' });
    expect(notice.detail).toContain(cgroup.dir);
  }, 60000);
});
