/**
 * The panel's model: joining sessions with the agent's processes, and page-outs.
 *
 * The agent here is a small in-memory JSON-RPC peer that answers with the
 * protocol's shapes (helpers/panelModelFixture.ts); the real agent is exercised
 * by the agent's own tests and, end to end, by the Galata tests in ui-tests/.
 */
import { Methods, PageoutParams } from '../common/protocol';
import {
  kernelState,
  measured,
  processInfo,
  setupKernels,
  setupModel
} from './helpers/panelModelFixture';

const MIB = 2 ** 20;

describe('BigmaacModel', () => {
  it('joins sessions with processes by kernel id and sums child processes', async () => {
    const { sessions, agent, model } = setupModel([
      { id: 'k1', name: 'python3', bigmaac: { enabled: true, reason: '' } },
      {
        id: 'k2',
        name: 'python3',
        bigmaac: { enabled: false, reason: 'disabled' }
      }
    ]);
    sessions.add('s1', 'work/big.ipynb', 'k1');
    sessions.add('s2', 'small.ipynb', 'k2');
    agent.processes = [
      processInfo(11, 'k1', 64 * MIB, 1),
      processInfo(12, 'k1', 32 * MIB, 2), // a child of the same kernel
      processInfo(13, '', 8 * MIB, 1) // `bigmaac run`, not a kernel
    ];
    await model.refresh();

    expect(model.agentError).toBe('');
    expect(model.rows.map(r => r.name)).toEqual(['big.ipynb', 'small.ipynb']);
    const [big, small] = model.rows;
    expect(big.path).toBe('work/big.ipynb');
    expect(big.diskBacked).toEqual({ bytes: 96 * MIB, count: 3 });
    expect(big.bigmaac).toEqual({ enabled: true, reason: '' });
    expect(small.diskBacked).toEqual({ bytes: 0, count: 0 });
    expect(small.bigmaac).toEqual({ enabled: false, reason: 'disabled' });
  });

  it('keeps the rows and reports the error when the agent fails', async () => {
    const { agent, model } = setupKernels([64 * MIB]);
    await model.refresh();
    agent.request = async () => {
      throw new Error('agent unavailable: no node');
    };
    await model.refresh();
    expect(model.agentError).toBe('agent unavailable: no node');
    expect(model.rows[0].diskBacked.bytes).toBe(64 * MIB);
  });

  it('pages out every disk-backed process of a kernel, with progress', async () => {
    const { agent, model } = setupKernels([64 * MIB]);
    agent.processes.push(processInfo(12, 'k1', 0, 0));
    await model.refresh();

    const phases: string[] = [];
    model.changed.connect(() => phases.push(model.rows[0].pageout.phase));
    await model.pageout('k1');

    expect(agent.pageoutPids()).toEqual([11]);
    const [pageout] = agent.requestsOf(Methods.processPageout);
    expect(typeof (pageout.params as PageoutParams).workDoneToken).toBe(
      'string'
    );
    expect(phases).toContain('running');
    const state = model.rows[0].pageout;
    expect(state.phase).toBe('done');
    if (state.phase === 'done') {
      expect(state.message).toBe('Paged out 64.0 MiB in 0.21 s');
      expect(state.result.bytesWritten).toBe(64 * MIB);
    }
  });

  it('reports a failed page-out on the row', async () => {
    const { agent, model } = setupKernels([64 * MIB]);
    await model.refresh();
    agent.pageoutError = new Error('no BigMaac process with pid 11');
    await model.pageout('k1');
    expect(model.rows[0].pageout).toEqual({
      phase: 'error',
      message: 'Page-out failed: no BigMaac process with pid 11'
    });
  });

  it('refreshes on session changes and on its timer only while subscribed', async () => {
    jest.useFakeTimers();
    try {
      const { sessions, agent, model } = setupModel();
      const lists = () =>
        agent.requestsOf(Methods.processesList).length;
      sessions.add('s1', 'a.ipynb', 'k1');
      expect(lists()).toBe(0);

      const subscription = model.subscribe();
      await jest.advanceTimersByTimeAsync(0);
      expect(lists()).toBe(1);
      await jest.advanceTimersByTimeAsync(model.refreshInterval);
      expect(lists()).toBe(2);

      sessions.add('s2', 'b.ipynb', 'k2');
      await jest.advanceTimersByTimeAsync(0);
      expect(lists()).toBe(3);
      expect(model.rows.map(r => r.name)).toEqual(['a.ipynb', 'b.ipynb']);

      subscription.dispose();
      await jest.advanceTimersByTimeAsync(10 * model.refreshInterval);
      expect(lists()).toBe(3);
      model.dispose();
    } finally {
      jest.useRealTimers();
    }
  });

  it('asks only the agent’s process list while only the totals are wanted', async () => {
    jest.useFakeTimers();
    try {
      let serverRequests = 0;
      const { sessions, agent, model } = setupKernels(
        [64 * MIB],
        [kernelState('k1')],
        {
          fetchKernelStates: async () => {
            serverRequests++;
            return [kernelState('k1')];
          },
          fetchSwapSpace: async () => {
            serverRequests++;
            return null;
          }
        }
      );
      agent.details.set(11, measured(16 * MIB, 0));
      agent.container = { usage: 1, limit: 2, source: 'cgroup-v2' };
      const count = () => {
        const counts: Record<string, number> = {};
        for (const { method } of agent.requests) {
          counts[method] = (counts[method] ?? 0) + 1;
        }
        return counts;
      };

      // The status bar, with the panel closed.
      const totals = model.subscribe({ totalsOnly: true });
      await jest.advanceTimersByTimeAsync(0);
      await jest.advanceTimersByTimeAsync(4 * model.refreshInterval);
      expect(count()).toEqual({
        [Methods.processesList]: 5,
        [Methods.processGet]: 1 // measured once; it has not changed since
      });
      expect(serverRequests).toBe(0);
      expect(sessions.refreshes).toBe(0);
      expect(model.rows[0].residency?.resident).toBe(16 * MIB);

      // The panel opens: everything, at once and on the timer.
      agent.requests = [];
      const panel = model.subscribe();
      await jest.advanceTimersByTimeAsync(0);
      expect(serverRequests).toBe(2);
      expect(count()[Methods.memoryGet]).toBe(1);
      await jest.advanceTimersByTimeAsync(model.refreshInterval);
      expect(serverRequests).toBe(4);

      // It closes again: back to the process list alone.
      panel.dispose();
      agent.requests = [];
      await jest.advanceTimersByTimeAsync(3 * model.refreshInterval);
      expect(count()).toEqual({ [Methods.processesList]: 3 });
      expect(serverRequests).toBe(4);
      totals.dispose();
      model.dispose();
    } finally {
      jest.useRealTimers();
    }
  });

  it('orders rows by name, or by disk-backed bytes, largest first', async () => {
    const { model } = setupKernels([8 * MIB, 64 * MIB, 8 * MIB]);
    await model.refresh();
    expect(model.rows.map(r => r.name)).toEqual([
      'a.ipynb',
      'b.ipynb',
      'c.ipynb'
    ]);
    model.sortBy = 'diskBacked';
    expect(model.rows.map(r => r.name)).toEqual([
      'b.ipynb',
      'a.ipynb',
      'c.ipynb'
    ]);
  });

  it('refuses a refresh interval below the minimum', () => {
    const { model } = setupModel();
    model.refreshInterval = 10;
    expect(model.refreshInterval).toBe(500);
    model.refreshInterval = 5000;
    expect(model.refreshInterval).toBe(5000);
  });
});

describe('BigmaacModel residency, history and page-out events', () => {
  it('measures residency through process/get, again only when a process changed', async () => {
    const { sessions, agent, model } = setupModel([kernelState('k1')]);
    sessions.add('s1', 'a.ipynb', 'k1');
    agent.processes = [
      processInfo(11, 'k1', 64 * MIB, 1),
      processInfo(12, 'k1', 32 * MIB, 1)
    ];
    agent.details.set(11, measured(48 * MIB, 16 * MIB));
    agent.details.set(12, measured(8 * MIB, 0));
    await model.refresh();
    const gets = () =>
      agent.requestsOf(Methods.processGet).length;

    const row = model.rows[0];
    expect(row.residency).toEqual({
      resident: 56 * MIB,
      dirty: 16 * MIB,
      dirtyKnown: true,
      measuredAt: 1
    });
    expect(row.swap).toEqual({
      dir: '/var/tmp/swap',
      reserved: 192 * MIB,
      free: null,
      total: null
    });
    expect(gets()).toBe(2);

    await model.refresh();
    expect(gets()).toBe(2);

    agent.processes[1] = { ...agent.processes[1], updatedAt: Date.now() + 1 };
    await model.refresh();
    expect(gets()).toBe(3);
    expect(model.container.diskBacked).toBe(96 * MIB);
    expect(model.container.resident).toBe(56 * MIB);
    expect(model.rows[0].history.map(p => p.resident)).toEqual([
      56 * MIB,
      56 * MIB,
      56 * MIB
    ]);
  });

  it('starts a kernel’s chart with the agent’s history of its process', async () => {
    const { agent, model } = setupKernels([64 * MIB], [kernelState('k1')]);
    agent.details.set(11, measured(64 * MIB, 0));
    const sample = (at: number, bytes: number) => ({
      at,
      diskBackedBytes: bytes,
      diskBackedCount: 1,
      peakBytes: bytes
    });
    agent.history.set(11, [sample(1000, 0), sample(2000, 32 * MIB)]);
    await model.refresh();
    await model.refresh();
    const history = model.rows[0].history;
    expect(history.slice(0, 2)).toEqual([
      { at: 1000, diskBacked: 0, resident: null },
      { at: 2000, diskBacked: 32 * MIB, resident: null }
    ]);
    expect(history.slice(2).map(p => [p.diskBacked, p.resident])).toEqual([
      [64 * MIB, 64 * MIB],
      [64 * MIB, 64 * MIB]
    ]);
    const asked = agent.requestsOf(Methods.historyGet);
    expect(asked).toHaveLength(1);
  });

  it('shows residency as unknown when the agent does not measure it', async () => {
    const { model } = setupKernels([64 * MIB]);
    await model.refresh();
    expect(model.agentError).toBe('');
    expect(model.rows[0].residency).toBeNull();
    expect(model.rows[0].swap.reserved).toBeNull();
    expect(model.container.resident).toBeNull();
  });

  it('records pageout/finished from any client as the last page-out, and measures again', async () => {
    const { agent, model } = setupKernels([64 * MIB], [kernelState('k1')]);
    agent.details.set(11, measured(64 * MIB, 64 * MIB));
    await model.refresh();

    agent.details.set(11, measured(0, 0));
    agent.notificationReceived.emit({
      method: 'pageout/finished',
      params: {
        pid: 11,
        kernelId: 'k1',
        reason: 'idle',
        ok: true,
        result: {
          bytesWritten: 64 * MIB,
          durationMs: 30,
          residentBefore: 64 * MIB,
          residentAfter: 0
        },
        at: 1700000000000
      }
    });
    expect(model.rows[0].lastPageout).toEqual({
      at: 1700000000000,
      reason: 'idle',
      ok: true,
      released: 64 * MIB,
      error: ''
    });
    await model.refresh();
    expect(model.rows[0].residency?.resident).toBe(0);
  });

  it('cancels a running page-out', async () => {
    const { agent, model } = setupKernels([64 * MIB]);
    await model.refresh();
    agent.waitForCancel = true;
    const done = model.pageout('k1');
    expect(model.rows[0].pageout.phase).toBe('running');
    model.cancelPageout('k1');
    await done;
    expect(model.rows[0].pageout).toEqual({
      phase: 'cancelled',
      message: 'Page-out cancelled.'
    });
  });

  it('pages out idle kernels only', async () => {
    const { agent, model } = setupKernels(
      [64 * MIB, 64 * MIB, 0],
      [
        kernelState('k1', { executionState: 'idle' }),
        kernelState('k2', { executionState: 'busy' }),
        kernelState('k3', { executionState: 'idle' })
      ]
    );
    await model.refresh();
    expect(await model.pageoutIdle()).toBe(1);
    expect(agent.pageoutPids()).toEqual([11]);
  });

  it('checks each kernel’s state again just before its idle page-out', async () => {
    const states = [
      kernelState('k1', { executionState: 'idle' }),
      kernelState('k2', { executionState: 'idle' }),
      kernelState('k3', { executionState: 'idle' })
    ];
    // k1: this page's connection says busy now. k2: no connection; the
    // server says busy now. k3: idle by both.
    const { agent, model } = setupKernels(
      [64 * MIB, 64 * MIB, 64 * MIB],
      states,
      {
        kernelStatus: id =>
          id === 'k1' ? 'busy' : id === 'k3' ? 'idle' : null
      }
    );
    await model.refresh();
    states[1] = kernelState('k2', { executionState: 'busy' });
    expect(await model.pageoutIdle()).toBe(1);
    expect(agent.pageoutPids()).toEqual([13]);
  });
});

describe('BigmaacModel expanded kernels', () => {
  const inspected: string[] = [];
  const inspectVariables = async (kernelId: string) => {
    inspected.push(kernelId);
    return [
      {
        name: 'a',
        type: 'numpy.ndarray',
        shape: '(8388608,)',
        address: 0x7f0000001000,
        nbytes: 64 * MIB
      },
      {
        name: 'small',
        type: 'bytes',
        shape: 'len 8192',
        address: 0x5500000000,
        nbytes: 8192
      }
    ];
  };

  beforeEach(() => inspected.splice(0));

  it('lists allocations with their resident share and owning variables', async () => {
    const { sessions, agent, model } = setupModel([kernelState('k1')], {
      languageOf: () => 'python',
      inspectVariables
    });
    sessions.add('s1', 'a.ipynb', 'k1');
    agent.processes = [processInfo(11, 'k1', 96 * MIB, 2)];
    agent.details.set(
      11,
      measured(40 * MIB, 0, [
        { address: 0x7f0000000000, size: 64 * MIB + 4096, resident: 32 * MIB },
        { address: 0x7f1000000000, size: 32 * MIB, resident: 8 * MIB }
      ])
    );
    await model.refresh();
    expect(model.rows[0].details).toBeNull();

    await model.setExpanded('k1', true);
    const row = model.rows[0];
    expect(row.expanded).toBe(true);
    expect(row.language).toBe('python');
    expect(inspected).toEqual(['k1']);
    const details = row.details!;
    expect(details.variables.status).toBe('ready');
    expect(details.allocationsTotal).toBe(2);
    expect(details.allocations.map(a => [a.size, a.resident])).toEqual([
      [64 * MIB + 4096, 32 * MIB],
      [32 * MIB, 8 * MIB]
    ]);
    expect(details.allocations[0].variables.map(v => v.name)).toEqual(['a']);
    expect(details.allocations[1].variables).toEqual([]);

    await model.setExpanded('k1', false);
    expect(model.rows[0].details).toBeNull();
  });

  it('does not ask a busy kernel, nor a kernel of another language', async () => {
    const { sessions, agent, model } = setupModel(
      [
        kernelState('k1', { executionState: 'busy' }),
        { id: 'k2', name: 'ir', bigmaac: { enabled: true, reason: '' } }
      ],
      { languageOf: name => (name === 'ir' ? 'R' : 'python'), inspectVariables }
    );
    sessions.add('s1', 'a.ipynb', 'k1');
    sessions.models.push({
      id: 's2',
      name: 'b.ipynb',
      path: 'b.ipynb',
      type: 'notebook',
      kernel: { id: 'k2', name: 'ir' }
    });
    agent.processes = [processInfo(11, 'k1', 64 * MIB, 1)];
    await model.refresh();
    await model.setExpanded('k1', true);
    await model.setExpanded('k2', true);
    expect(inspected).toEqual([]);
    const [a, b] = model.rows;
    expect(a.details?.variables).toEqual({ status: 'busy' });
    expect(b.details?.variables).toEqual({
      status: 'unsupported',
      language: 'R'
    });
  });
});

describe('BigmaacModel OOM kills', () => {
  it('reports a kernel the server saw OOM-killed, until dismissed', async () => {
    const { sessions, agent, model } = setupModel([
      kernelState('k1', {
        enabled: false,
        reason: 'disabled for this notebook',
        launches: 2,
        previousOomKilled: true,
        settings: { min_bigmaac_size: '32M' }
      })
    ]);
    sessions.add('s1', 'work/a.ipynb', 'k1');
    await model.refresh();
    expect(model.oomKills).toEqual([
      {
        key: 'k1:launch-1',
        kernelId: 'k1',
        name: 'a.ipynb',
        path: 'work/a.ipynb',
        bigmaacOn: false,
        minBigmaacSize: '32M',
        atLowestThreshold: false,
        status: ''
      }
    ]);
    // The agent reports the same kill; dismissing hides both reports.
    agent.notificationReceived.emit({
      method: 'process/exited',
      params: {
        pid: 11,
        kernelId: 'k1',
        at: 6,
        cause: 'oom-killed',
        detail: ''
      }
    });
    expect(model.oomKills.map(k => k.key)).toEqual(['k1:launch-1']);
    model.dismissOom('k1:launch-1');
    expect(model.oomKills).toEqual([]);
    await model.refresh();
    expect(model.oomKills).toEqual([]);
  });

  it('reports an OOM kill the agent saw, by kernel id', async () => {
    const { agent, model } = setupKernels([64 * MIB], [kernelState('k1')]);
    await model.refresh();
    agent.notificationReceived.emit({
      method: 'process/exited',
      params: { pid: 11, at: 5, cause: 'killed', detail: 'SIGKILL' }
    });
    expect(model.oomKills).toEqual([]);
    agent.notificationReceived.emit({
      method: 'process/exited',
      params: { pid: 11, at: 6, cause: 'oom-killed', detail: 'oom_kill 1 → 2' }
    });
    expect(model.oomKills.map(k => [k.key, k.bigmaacOn])).toEqual([
      ['k1:exit-6', true]
    ]);
  });

  it('turns BigMaac on or lowers the threshold for the notebook, then restarts', async () => {
    const calls: string[] = [];
    const { sessions, model } = setupModel(
      [
        kernelState('k1', { enabled: false, oomKilled: true, launches: 1 }),
        kernelState('k2', {
          oomKilled: true,
          launches: 3,
          settings: { min_bigmaac_size: '64M' }
        })
      ],
      {
        setNotebookToggle: async (path, toggle) => {
          calls.push(`toggle ${path} ${JSON.stringify(toggle)}`);
        },
        restartKernel: async id => {
          calls.push(`restart ${id}`);
        }
      }
    );
    sessions.add('s1', 'a.ipynb', 'k1');
    sessions.add('s2', 'b.ipynb', 'k2');
    await model.refresh();
    await model.fixOom('k1:launch-1', 'enable');
    await model.fixOom('k2:launch-3', 'lower-threshold');
    expect(calls).toEqual([
      'toggle a.ipynb {"enabled":true}',
      'restart k1',
      'toggle b.ipynb {"enabled":true,"min_bigmaac_size":"16M"}',
      'restart k2'
    ]);
    expect(model.oomKills).toEqual([]);
  });

  it('fixes an open notebook through its toggle and restarts it through its session', async () => {
    const calls: string[] = [];
    const { sessions, model } = setupModel(
      [
        kernelState('k1', {
          oomKilled: true,
          launches: 1,
          settings: { min_bigmaac_size: '32M' }
        })
      ],
      {
        setNotebookToggle: async path => {
          calls.push(`registry ${path}`);
        },
        restartKernel: async id => {
          calls.push(`kernel API restart ${id}`);
        },
        openNotebook: path =>
          path === 'a.ipynb'
            ? {
                setChoice: async choice => {
                  calls.push(`notebook choice ${JSON.stringify(choice)}`);
                },
                restartKernel: async () => {
                  calls.push('session restart');
                }
              }
            : null
      }
    );
    sessions.add('s1', 'a.ipynb', 'k1');
    await model.refresh();
    await model.fixOom('k1:launch-1', 'lower-threshold');
    expect(calls).toEqual([
      'notebook choice {"enabled":true,"min_bigmaac_size":"8M"}',
      'session restart'
    ]);
    expect(model.oomKills).toEqual([]);
  });

  it('offers no restart that would change nothing at a 1M threshold', async () => {
    const calls: string[] = [];
    const { sessions, model } = setupModel(
      [
        kernelState('k1', {
          oomKilled: true,
          launches: 2,
          settings: { min_bigmaac_size: '1M' }
        })
      ],
      {
        setNotebookToggle: async () => {
          calls.push('registry');
        },
        restartKernel: async () => {
          calls.push('restart');
        }
      }
    );
    sessions.add('s1', 'a.ipynb', 'k1');
    await model.refresh();
    expect(model.oomKills.map(k => k.atLowestThreshold)).toEqual([true]);
    await model.fixOom('k1:launch-2', 'lower-threshold');
    expect(calls).toEqual([]);
    expect(model.oomKills[0].status).toBe(
      'The threshold is already 1M, the lowest this panel sets: a restart would change nothing.'
    );
  });

  it('says why a fix failed, and keeps the banner', async () => {
    const { sessions, model } = setupModel(
      [kernelState('k1', { enabled: false, oomKilled: true, launches: 1 })],
      {
        setNotebookToggle: async () => {
          throw new Error('400: unknown key');
        },
        restartKernel: async () => undefined
      }
    );
    sessions.add('s1', 'a.ipynb', 'k1');
    await model.refresh();
    await model.fixOom('k1:launch-1', 'enable');
    expect(model.oomKills[0].status).toBe(
      'Could not apply the change: 400: unknown key'
    );
  });
});

describe('BigmaacModel container memory and swap space', () => {
  const swapSpace = {
    dir: '/var/tmp/swap',
    free: 40 * 1024 * MIB,
    total: 100 * 1024 * MIB,
    fsType: 'ext4',
    onRam: false
  };

  it('samples the container cgroup into the summary and its chart', async () => {
    const { agent, model } = setupKernels([64 * MIB], [kernelState('k1')]);
    agent.container = {
      usage: 900 * MIB,
      limit: 2048 * MIB,
      source: 'cgroup-v1'
    };
    await model.refresh();
    agent.container = { usage: 1200 * MIB, limit: 2048 * MIB, source: 'cgroup-v1' };
    await model.refresh();

    expect(model.container.memory).toEqual(agent.container);
    const history = model.container.history;
    expect(history.map(p => p.containerUsage)).toEqual([900 * MIB, 1200 * MIB]);
    expect(history.map(p => p.containerLimit)).toEqual([2048 * MIB, 2048 * MIB]);
  });

  it('leaves the container unknown for an agent without the capability', async () => {
    const { agent, model } = setupKernels([64 * MIB], [kernelState('k1')]);
    await model.refresh();
    expect(model.container.memory).toBeNull();
    expect(model.container.history[0].containerUsage).toBeNull();
    expect(agent.requests.map(r => r.method)).not.toContain(Methods.memoryGet);
  });

  it('keeps an unlimited cgroup, and no cgroup, apart', async () => {
    const { agent, model } = setupModel();
    agent.container = { usage: 5 * MIB, limit: null, source: 'cgroup-v2' };
    await model.refresh();
    expect(model.container.memory).toEqual({
      usage: 5 * MIB,
      limit: null,
      source: 'cgroup-v2'
    });
    agent.container = null;
    await model.refresh();
    expect(model.container.memory).toBeNull();
  });

  it("puts the swap disk's space in the rows that swap there", async () => {
    const { sessions, agent, model } = setupModel(
      [kernelState('k1'), kernelState('k2')],
      { fetchSwapSpace: async () => swapSpace }
    );
    sessions.add('s1', 'a.ipynb', 'k1');
    sessions.add('s2', 'b.ipynb', 'k2');
    agent.processes = [
      processInfo(11, 'k1', 64 * MIB, 1),
      { ...processInfo(12, 'k2', 32 * MIB, 1), swapDir: '/elsewhere' }
    ];
    await model.refresh();
    const [a, b] = model.rows;
    expect(a.swap).toMatchObject({
      dir: '/var/tmp/swap',
      free: 40 * 1024 * MIB,
      total: 100 * 1024 * MIB
    });
    // Measured for another directory: not this row's disk.
    expect(b.swap).toMatchObject({ dir: '/elsewhere', free: null, total: null });
    expect(model.container.swap).toEqual(swapSpace);
  });

  it('drops the swap numbers when the status request fails, without an alert', async () => {
    let fail = false;
    const { agent, model } = setupModel([], {
      fetchSwapSpace: async () => {
        if (fail) {
          throw new Error('503: unavailable');
        }
        return swapSpace;
      }
    });
    agent.processes = [];
    await model.refresh();
    expect(model.container.swap).toEqual(swapSpace);
    fail = true;
    await model.refresh();
    expect(model.container.swap).toBeNull();
    expect(model.serverError).toBe('');
  });
});
