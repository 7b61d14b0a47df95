/**
 * Stats subscriptions, `processes/changed` and history, from the real agent bundle against
 * real processes under the preload library.
 */
import {
  ErrorCodes,
  HistoryGetResult,
  InitializeResult,
  ProcessesChangedParams,
  StatsSubscribeResult,
  StatsUnsubscribeResult,
  StatsUpdateParams
} from '../common/protocol';
import {
  INITIALIZE,
  MiB,
  recordNotifications,
  responseError,
  startBigProcess,
  startSteppingProcess,
  useTestBed
} from './helpers';

const bed = useTestBed({ big: { bytes: 16 * MiB, kernelId: 'jest-kernel-subs' } });
const { sandbox, agent, initializedAgent } = bed;

describe('stats/subscribe', () => {
  it('is advertised in the capabilities', async () => {
    const started = agent();
    const result = await started.connection.sendRequest<InitializeResult>('initialize', INITIALIZE);
    expect(result.capabilities.statsSubscription).toBe(true);
    expect(result.capabilities.history).toBe(true);
  });

  it('sends stats/update with every process until unsubscribed', async () => {
    const { connection } = await initializedAgent();
    const updates = recordNotifications<StatsUpdateParams>(connection, 'stats/update');
    const subscribed = await connection.sendRequest<StatsSubscribeResult>('stats/subscribe', {
      intervalMs: 100
    });
    expect(subscribed.intervalMs).toBe(100);
    // Several ticks, each with the process and its disk-backed memory.
    for (let tick = 1; tick <= 3; tick++) {
      const update = await updates.waitFor(() => true, tick - 1);
      const info = update.processes.find(p => p.pid === bed.big.pid);
      expect(info?.diskBacked.bytes).toBeGreaterThanOrEqual(16 * MiB);
      expect(info?.kernelId).toBe('jest-kernel-subs');
      expect(update.intervalMs).toBe(100);
    }
    const timestamps = updates.received.slice(0, 3).map(u => u.timestamp);
    expect([...timestamps].sort((a, b) => a - b)).toEqual(timestamps);

    const result = await connection.sendRequest<StatsUnsubscribeResult>('stats/unsubscribe', {
      subscriptionId: subscribed.subscriptionId
    });
    expect(result.removed).toBe(true);
    // A request answered after the unsubscribe; any update it races with has arrived.
    await connection.sendRequest('processes/list');
    const countAfter = updates.received.length;
    // Ten subscribed intervals later nothing more came (the background rate sends no updates).
    await new Promise(done => setTimeout(done, 1000));
    await connection.sendRequest('processes/list');
    expect(updates.received.length).toBe(countAfter);
    // A second unsubscribe of the same id finds nothing.
    await expect(
      connection.sendRequest('stats/unsubscribe', { subscriptionId: subscribed.subscriptionId })
    ).resolves.toEqual({ removed: false });
  });

  it('clamps the interval and keeps separate subscriptions', async () => {
    const { connection } = await initializedAgent();
    const fast = await connection.sendRequest<StatsSubscribeResult>('stats/subscribe', {
      intervalMs: 1
    });
    const slow = await connection.sendRequest<StatsSubscribeResult>('stats/subscribe', {
      intervalMs: 1e9
    });
    expect(fast.intervalMs).toBe(100);
    expect(slow.intervalMs).toBe(60000);
    expect(slow.subscriptionId).not.toBe(fast.subscriptionId);
    await connection.sendRequest('stats/unsubscribe', { subscriptionId: fast.subscriptionId });
    // The slow subscription remains: updates now report its interval.
    const updates = recordNotifications<StatsUpdateParams>(connection, 'stats/update');
    await connection.sendRequest('stats/subscribe', { intervalMs: 30000 });
    const update = await updates.waitFor();
    expect(update.intervalMs).toBe(30000);
  });

  it('answers bad params with -32602 and an uninitialized agent with -32002', async () => {
    const { connection } = await initializedAgent();
    for (const intervalMs of ['fast', -5, 0, null, undefined]) {
      const error = await responseError(connection.sendRequest('stats/subscribe', { intervalMs }));
      expect(error.code).toBe(ErrorCodes.InvalidParams);
      expect(error.message).toMatch(/intervalMs must be a positive number/);
    }
    const error = await responseError(
      connection.sendRequest('stats/unsubscribe', { subscriptionId: 'one' })
    );
    expect(error.code).toBe(ErrorCodes.InvalidParams);

    const fresh = agent();
    const early = await responseError(
      fresh.connection.sendRequest('stats/subscribe', { intervalMs: 100 })
    );
    expect(early.code).toBe(ErrorCodes.NotInitialized);
  });

  it('answers -32603 naming the missing addon, and keeps running', async () => {
    const started = agent([], { BIGMAAC_ADDON: '/nonexistent/bigmaac.node' });
    await started.connection.sendRequest('initialize', INITIALIZE);
    const error = await responseError(
      started.connection.sendRequest('stats/subscribe', { intervalMs: 100 })
    );
    expect(error.code).toBe(ErrorCodes.InternalError);
    expect(error.message).toMatch(/addon is missing/);
    await expect(started.connection.sendRequest('shutdown')).resolves.toBeNull();
  });
});

describe('processes/changed', () => {
  it('reports processes that start, exit, or are killed', async () => {
    const { connection } = await initializedAgent();
    const changes = recordNotifications<ProcessesChangedParams>(connection, 'processes/changed');
    await connection.sendRequest('stats/subscribe', { intervalMs: 100 });

    const exiting = await startBigProcess(sandbox, 4 * MiB, 'jest-kernel-exits');
    const killed = await startBigProcess(sandbox, 4 * MiB, 'jest-kernel-killed');
    const appeared = (pid: number) => (c: ProcessesChangedParams) =>
      c.added.some(p => p.pid === pid);
    const added = await changes.waitFor(appeared(killed.pid));
    expect(added.pids).toContain(killed.pid);
    expect(added.pids).toContain(bed.big.pid);
    await changes.waitFor(appeared(exiting.pid));

    const disappeared = (pid: number) => (c: ProcessesChangedParams) =>
      c.removed.some(p => p.pid === pid);
    await exiting.stop();
    const exited = await changes.waitFor(disappeared(exiting.pid));
    expect(exited.pids).not.toContain(exiting.pid);
    expect(exited.removed.find(p => p.pid === exiting.pid)?.startTime).toBeGreaterThan(0);

    killed.child.kill('SIGKILL');
    const gone = await changes.waitFor(disappeared(killed.pid));
    expect(gone.pids).not.toContain(killed.pid);
    expect(gone.pids).toContain(bed.big.pid);
    // The long-lived process was never reported as removed.
    expect(changes.received.some(disappeared(bed.big.pid))).toBe(false);
  });
});

describe('history/get', () => {
  it('returns samples over time that follow the process as it grows', async () => {
    const stepping = await startSteppingProcess(sandbox);
    try {
      await stepping.grow(4);
      const { connection } = await initializedAgent();
      const updates = recordNotifications<StatsUpdateParams>(connection, 'stats/update');
      await connection.sendRequest('stats/subscribe', { intervalMs: 100 });
      const bytesOf = (u: StatsUpdateParams) =>
        u.processes.find(p => p.pid === stepping.pid)?.diskBacked.bytes ?? 0;
      await updates.waitFor(u => bytesOf(u) >= 4 * MiB);
      const middle = Date.now();
      await stepping.grow(12);
      await updates.waitFor(u => bytesOf(u) >= 16 * MiB);

      const history = await connection.sendRequest<HistoryGetResult>('history/get', {
        pid: stepping.pid
      });
      expect(history.pid).toBe(stepping.pid);
      expect(history.startTime).toBeGreaterThan(0);
      expect(history.capacity).toBeGreaterThan(100);
      const bytes = history.samples.map(s => s.diskBackedBytes);
      expect(bytes.some(b => b >= 4 * MiB && b < 16 * MiB)).toBe(true);
      expect(bytes[bytes.length - 1]).toBeGreaterThanOrEqual(16 * MiB);
      const times = history.samples.map(s => s.at);
      expect([...times].sort((a, b) => a - b)).toEqual(times);
      const last = history.samples[history.samples.length - 1];
      expect(last.peakBytes).toBeGreaterThanOrEqual(last.diskBackedBytes);
      expect(last.diskBackedCount).toBeGreaterThanOrEqual(2);

      const recent = await connection.sendRequest<HistoryGetResult>('history/get', {
        pid: stepping.pid,
        sinceMs: middle
      });
      expect(recent.samples.length).toBeGreaterThan(0);
      expect(recent.samples.length).toBeLessThan(history.samples.length + 1);
      expect(recent.samples.every(s => s.at > middle)).toBe(true);
    } finally {
      await stepping.stop();
    }
  });

  it('has a sample of a process even without a subscription', async () => {
    const { connection } = await initializedAgent();
    const history = await connection.sendRequest<HistoryGetResult>('history/get', {
      pid: bed.big.pid
    });
    expect(history.samples.length).toBeGreaterThanOrEqual(1);
    expect(history.samples[0].diskBackedBytes).toBeGreaterThanOrEqual(16 * MiB);
  });

  it('answers an unknown pid with -32100 and bad params with -32602', async () => {
    const { connection } = await initializedAgent();
    const unknown = await responseError(
      connection.sendRequest('history/get', { pid: process.pid })
    );
    expect(unknown.code).toBe(ErrorCodes.UnknownProcess);
    expect(unknown.data?.code).toBe('ENOENT_PROCESS');
    const badPid = await responseError(connection.sendRequest('history/get', { pid: 'x' }));
    expect(badPid.code).toBe(ErrorCodes.InvalidParams);
    const badSince = await responseError(
      connection.sendRequest('history/get', { pid: bed.big.pid, sinceMs: 'yesterday' })
    );
    expect(badSince.code).toBe(ErrorCodes.InvalidParams);
    expect(badSince.message).toMatch(/sinceMs/);
  });
});
