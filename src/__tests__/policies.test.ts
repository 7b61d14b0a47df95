/**
 * The agent's policies and notifications against real processes under the preload:
 * policy/get and policy/set, idle page-out driven by kernel/state, pageout/finished, and
 * process/exited with process/exits. The memory-cgroup cases are in policyCgroup.test.ts.
 */
import {
  ErrorCodes,
  PageoutFinishedParams,
  Policy,
  ProcessExitedParams,
  ProcessExitsResult,
  ProcessGetResult
} from '../common/protocol';
import {
  AgentProcess,
  BigProcess,
  MiB,
  NotificationLog,
  recordNotifications,
  responseError,
  useTestBed
} from './helpers';

const bed = useTestBed();
const { initializedAgent } = bed;

/** A big process of `mib` MiB, stopped after the test. */
function bigProcess(mib: number, kernelId: string): Promise<BigProcess> {
  return bed.bigProcess(mib * MiB, kernelId);
}

function sleep(ms: number): Promise<void> {
  return new Promise(done => setTimeout(done, ms));
}

async function resident(agent: AgentProcess, pid: number): Promise<number> {
  const { process: details } = await agent.connection.sendRequest<ProcessGetResult>(
    'process/get',
    { pid }
  );
  return details.residency?.resident as number;
}

describe('policy/get and policy/set', () => {
  it('starts from the settings defaults and applies partial changes', async () => {
    const { connection } = await initializedAgent();
    await expect(connection.sendRequest<Policy>('policy/get')).resolves.toEqual({
      idlePageout: { enabled: true, idleSeconds: 30 },
      pressure: { enabled: true, thresholdPercent: 85 }
    });
    const changed = await connection.sendRequest<Policy>('policy/set', {
      idlePageout: { idleSeconds: 5 },
      pressure: { enabled: false }
    });
    expect(changed).toEqual({
      idlePageout: { enabled: true, idleSeconds: 5 },
      pressure: { enabled: false, thresholdPercent: 85 }
    });
    await expect(connection.sendRequest<Policy>('policy/get')).resolves.toEqual(changed);
  });

  it('rejects bad values with -32602 naming the field, and changes nothing', async () => {
    const { connection } = await initializedAgent();
    const cases: [unknown, RegExp][] = [
      [
        { idlePageout: { idleSeconds: 0 } },
        /^idlePageout\.idleSeconds: must be an integer from 1 to 86400, got 0$/
      ],
      [{ idlePageout: { idleSeconds: 2.5 } }, /idlePageout\.idleSeconds: must be an integer/],
      [
        { pressure: { thresholdPercent: 100 } },
        /^pressure\.thresholdPercent: must be an integer from 1 to 99/
      ],
      [{ pressure: { enabled: 'yes' } }, /^pressure\.enabled: must be true or false, got "yes"$/],
      [{ pressure: 85 }, /^pressure: must be an object/],
      [{ idle: {} }, /^idle: unknown field/],
      [{ idlePageout: { seconds: 3 } }, /^idlePageout\.seconds: unknown field/],
      [[1], /^params: must be an object/]
    ];
    for (const [params, message] of cases) {
      // A valid first part must not be applied when a later part is bad.
      const mixed =
        typeof params === 'object' && params !== null && !Array.isArray(params)
          ? { idlePageout: { enabled: false }, ...params }
          : params;
      const error = await responseError(connection.sendRequest('policy/set', mixed));
      expect(error.code).toBe(ErrorCodes.InvalidParams);
      expect(error.data?.code).toBe('EINVAL');
      expect(error.message).toMatch(message);
    }
    await expect(connection.sendRequest<Policy>('policy/get')).resolves.toEqual({
      idlePageout: { enabled: true, idleSeconds: 30 },
      pressure: { enabled: true, thresholdPercent: 85 }
    });
  });
});

describe('idle page-out', () => {
  /** An agent that pages out after one idle second and feels no memory pressure. */
  async function idleAgent(): Promise<{
    agent: AgentProcess;
    finished: NotificationLog<PageoutFinishedParams>;
  }> {
    const agent = await initializedAgent();
    const finished = recordNotifications<PageoutFinishedParams>(
      agent.connection,
      'pageout/finished'
    );
    await agent.connection.sendRequest('policy/set', {
      idlePageout: { enabled: true, idleSeconds: 1 },
      pressure: { enabled: false }
    });
    return { agent, finished };
  }

  function kernelState(agent: AgentProcess, kernelId: string, state: string, pid?: number) {
    return agent.connection.sendNotification('kernel/state', { kernelId, state, pid });
  }

  it('pages out a kernel idle for idleSeconds, once until it runs again', async () => {
    const kernel = await bigProcess(48, 'jest-kernel-idle');
    const { agent, finished } = await idleAgent();
    expect(await resident(agent, kernel.pid)).toBeGreaterThanOrEqual(48 * MiB);

    await kernelState(agent, 'jest-kernel-idle', 'idle', kernel.pid);
    const first = await finished.waitFor(p => p.pid === kernel.pid);
    expect(first).toMatchObject({ reason: 'idle', ok: true, kernelId: 'jest-kernel-idle' });
    expect(first.result?.residentBefore).toBeGreaterThanOrEqual(48 * MiB);
    // What the user sees: the kernel's memory left RAM.
    expect(await resident(agent, kernel.pid)).toBeLessThan(8 * MiB);

    // Still idle, repeated states change nothing: no second page-out.
    await kernelState(agent, 'jest-kernel-idle', 'idle', kernel.pid);
    await sleep(3000);
    expect(finished.received.filter(p => p.pid === kernel.pid)).toHaveLength(1);

    // It ran a cell and is idle again: paged out again.
    await kernelState(agent, 'jest-kernel-idle', 'busy', kernel.pid);
    await kernelState(agent, 'jest-kernel-idle', 'idle', kernel.pid);
    const second = await finished.waitFor(p => p.pid === kernel.pid, 1);
    expect(second).toMatchObject({ reason: 'idle', ok: true });
  });

  it('never pages out a busy kernel, nor one whose state it was never told', async () => {
    const busy = await bigProcess(8, 'jest-kernel-busy');
    const unknown = await bigProcess(8, 'jest-kernel-unknown');
    const { agent, finished } = await idleAgent();
    // Idle for less than idleSeconds, then busy.
    await kernelState(agent, 'jest-kernel-busy', 'idle', busy.pid);
    await kernelState(agent, 'jest-kernel-busy', 'busy', busy.pid);
    await sleep(3000);
    expect(finished.received).toEqual([]);
    expect(await resident(agent, busy.pid)).toBeGreaterThanOrEqual(8 * MiB);
    expect(await resident(agent, unknown.pid)).toBeGreaterThanOrEqual(8 * MiB);
    // The same kernel once idle is paged out: the policy was on all along.
    await kernelState(agent, 'jest-kernel-busy', 'idle', busy.pid);
    await expect(finished.waitFor(p => p.pid === busy.pid)).resolves.toMatchObject({
      reason: 'idle'
    });
    expect(finished.received.filter(p => p.pid === unknown.pid)).toEqual([]);
  });

  it('cancels a running automatic page-out when the kernel turns busy', async () => {
    const kernel = await bigProcess(8, 'jest-kernel-cancel');
    const { agent, finished } = await idleAgent();
    // Stopped, the process cannot serve the page-out: it waits in its queue, running for
    // the agent, until the process continues and finds it cancelled.
    kernel.child.kill('SIGSTOP');
    try {
      await kernelState(agent, 'jest-kernel-cancel', 'idle', kernel.pid);
      await sleep(1500);
      expect(finished.received).toEqual([]);
      await kernelState(agent, 'jest-kernel-cancel', 'busy', kernel.pid);
      // Time for the agent to forward the cancel (it is still within the 5 s the library
      // allows a stopped process before the page-out times out).
      await sleep(1000);
    } finally {
      kernel.child.kill('SIGCONT');
    }
    const notice = await finished.waitFor(p => p.pid === kernel.pid);
    expect(notice).toMatchObject({ reason: 'idle', ok: false, error: { code: 'ECANCELLED' } });
    // Its memory stayed where it was.
    expect(await resident(agent, kernel.pid)).toBeGreaterThanOrEqual(8 * MiB);
  });

  /** Two processes of one kernel, the one the agent lists (and pages out) first first. */
  async function twoProcessKernel(kernelId: string): Promise<[BigProcess, BigProcess]> {
    const a = await bigProcess(8, kernelId);
    const b = await bigProcess(8, kernelId);
    return a.pid < b.pid ? [a, b] : [b, a];
  }

  it('runs one idle round at a time: a round cut short waits, the next one does the work', async () => {
    const [first, second] = await twoProcessKernel('jest-kernel-rounds');
    const { agent, finished } = await idleAgent();
    // The round of the first idle period gets stuck on the stopped first process.
    first.child.kill('SIGSTOP');
    try {
      await kernelState(agent, 'jest-kernel-rounds', 'idle');
      await sleep(1500);
      // A blip: the round is cancelled, and the new idle period's round is due after 1 s,
      // while the cancelled page-out still waits for the stopped process.
      await kernelState(agent, 'jest-kernel-rounds', 'busy');
      await kernelState(agent, 'jest-kernel-rounds', 'idle');
      await sleep(2500);
    } finally {
      first.child.kill('SIGCONT');
    }
    // The new round pages out the first process, then the second.
    await finished.waitFor(p => p.pid === second.pid && p.ok);
    await sleep(1500);
    const seen = (pid: number) =>
      finished.received.filter(p => p.pid === pid).map(p => (p.ok ? 'ok' : p.error?.code));
    // Never two page-outs of one process at once (EBUSY_PAGEOUT), never one twice.
    expect(seen(first.pid)).toEqual(['ECANCELLED', 'ok']);
    expect(seen(second.pid)).toEqual(['ok']);
  }, 30000);

  it('stops a round cut short: the rest waits for the next idle period', async () => {
    const [first, second] = await twoProcessKernel('jest-kernel-early');
    const { agent, finished } = await idleAgent();
    first.child.kill('SIGSTOP');
    try {
      await kernelState(agent, 'jest-kernel-early', 'idle');
      await sleep(1500);
      await kernelState(agent, 'jest-kernel-early', 'busy');
      // The next idle period's page-out is due only after 60 s.
      await agent.connection.sendRequest('policy/set', { idlePageout: { idleSeconds: 60 } });
      await kernelState(agent, 'jest-kernel-early', 'idle');
      await sleep(500);
    } finally {
      first.child.kill('SIGCONT');
    }
    await expect(finished.waitFor(p => p.pid === first.pid)).resolves.toMatchObject({
      ok: false,
      error: { code: 'ECANCELLED' }
    });
    // The cancelled round does not go on with the kernel's other process.
    await sleep(2000);
    expect(finished.received.filter(p => p.pid === second.pid)).toEqual([]);
    expect(await resident(agent, second.pid)).toBeGreaterThanOrEqual(8 * MiB);
  }, 30000);

  it('ignores a malformed kernel/state and keeps serving', async () => {
    const { agent } = await idleAgent();
    await agent.connection.sendNotification('kernel/state', { state: 'idle' });
    await agent.connection.sendNotification('kernel/state', null);
    await expect(agent.connection.sendRequest('policy/get')).resolves.toHaveProperty('pressure');
    expect(agent.stderr()).toMatch(/ignored kernel\/state without a kernelId/);
  });
});

describe('process/exited and process/exits', () => {
  it('tells a process killed by SIGKILL from one that exited', async () => {
    const killed = await bigProcess(4, 'jest-kernel-killed');
    const exiting = await bigProcess(4, 'jest-kernel-exiting');
    const agent = await initializedAgent();
    const exited = recordNotifications<ProcessExitedParams>(agent.connection, 'process/exited');
    // Fast ticks, so the agent notices within a fraction of a second.
    await agent.connection.sendRequest('stats/subscribe', { intervalMs: 100 });

    const start = Date.now();
    killed.child.kill('SIGKILL');
    await killed.stop();
    const notice = await exited.waitFor(p => p.pid === killed.pid);
    expect(notice).toMatchObject({ cause: 'killed', kernelId: 'jest-kernel-killed' });
    expect(notice.detail).toMatch(/without cleaning up/);
    expect(notice.at).toBeGreaterThanOrEqual(start);

    await exiting.stop(); // closes its stdin: a normal exit
    await expect(exited.waitFor(p => p.pid === exiting.pid)).resolves.toMatchObject({
      cause: 'exited',
      kernelId: 'jest-kernel-exiting'
    });

    const { exits, capacity } = await agent.connection.sendRequest<ProcessExitsResult>(
      'process/exits',
      {}
    );
    expect(capacity).toBe(100);
    expect(exits.map(e => [e.pid, e.cause])).toEqual([
      [killed.pid, 'killed'],
      [exiting.pid, 'exited']
    ]);
    const later = await agent.connection.sendRequest<ProcessExitsResult>('process/exits', {
      sinceMs: exits[0].at
    });
    expect(later.exits.map(e => e.pid)).not.toContain(killed.pid);
    const bad = await responseError(
      agent.connection.sendRequest('process/exits', { sinceMs: 'yesterday' })
    );
    expect(bad.code).toBe(ErrorCodes.InvalidParams);
  });
});
