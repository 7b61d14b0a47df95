/**
 * The panel's model: joining sessions with the agent's processes, and page-outs.
 *
 * The agent here is a small in-memory JSON-RPC peer that answers with the
 * protocol's shapes; the real agent is exercised by the agent's own tests and,
 * end to end, by the Galata tests in ui-tests/.
 */
import type { Session } from '@jupyterlab/services';
import { Signal } from '@lumino/signaling';

import {
  Methods,
  PageoutParams,
  PageoutResult,
  ProcessInfo
} from '../common/protocol';
import type { IAgentNotification } from '../panel/agentClient';
import { BigmaacModel, IAgentConnection } from '../panel/model';
import type { IKernelState } from '../panel/serverApi';

const MIB = 2 ** 20;

class Sessions {
  readonly runningChanged = new Signal<this, Session.IModel[]>(this);
  models: Session.IModel[] = [];
  async refreshRunning(): Promise<void> {
    this.refreshes++;
  }
  refreshes = 0;
  running(): IterableIterator<Session.IModel> {
    return this.models[Symbol.iterator]();
  }
  add(id: string, path: string, kernelId: string): void {
    this.models.push({
      id,
      name: path,
      path,
      type: 'notebook',
      kernel: { id: kernelId, name: 'python3' }
    });
    this.runningChanged.emit(this.models);
  }
}

class Agent implements IAgentConnection {
  readonly notificationReceived = new Signal<this, IAgentNotification>(this);
  processes: ProcessInfo[] = [];
  pageoutError: Error | null = null;
  requests: { method: string; params?: unknown }[] = [];

  async request<T>(method: string, params?: unknown): Promise<T> {
    this.requests.push({ method, params });
    if (method === Methods.processesList) {
      return { processes: this.processes } as T;
    }
    if (method === Methods.processPageout) {
      const { pid, workDoneToken } = params as PageoutParams;
      if (this.pageoutError) {
        throw this.pageoutError;
      }
      const process = this.processes.find(p => p.pid === pid)!;
      const total = process.diskBacked.bytes;
      this.notificationReceived.emit({
        method: Methods.progress,
        params: {
          token: workDoneToken,
          value: {
            kind: 'report',
            bytesDone: total / 2,
            bytesTotal: total,
            percentage: 50
          }
        }
      });
      const result: PageoutResult = {
        pid,
        bytesWritten: total,
        durationMs: 210,
        residentBefore: total,
        residentAfter: 0
      };
      return result as T;
    }
    throw new Error(`unexpected method ${method}`);
  }
}

function processInfo(
  pid: number,
  kernelId: string,
  bytes: number,
  count: number
): ProcessInfo {
  return {
    pid,
    startTime: 1000 + pid,
    uid: 1000,
    kernelId,
    label: 'Python 3 (ipykernel)',
    command: 'python -m ipykernel_launcher',
    swapDir: '/var/tmp/swap',
    diskBacked: { bytes, count },
    peakBytes: bytes,
    updatedAt: Date.now()
  };
}

function setup(states: IKernelState[] = []) {
  const sessions = new Sessions();
  const agent = new Agent();
  const model = new BigmaacModel({
    sessions: sessions as unknown as Session.IManager,
    agent,
    fetchKernelStates: async () => states
  });
  return { sessions, agent, model };
}

describe('BigmaacModel', () => {
  it('joins sessions with processes by kernel id and sums child processes', async () => {
    const { sessions, agent, model } = setup([
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
    const { sessions, agent, model } = setup();
    sessions.add('s1', 'a.ipynb', 'k1');
    agent.processes = [processInfo(11, 'k1', 64 * MIB, 1)];
    await model.refresh();
    agent.request = async () => {
      throw new Error('agent unavailable: no node');
    };
    await model.refresh();
    expect(model.agentError).toBe('agent unavailable: no node');
    expect(model.rows[0].diskBacked.bytes).toBe(64 * MIB);
  });

  it('pages out every disk-backed process of a kernel, with progress', async () => {
    const { sessions, agent, model } = setup();
    sessions.add('s1', 'a.ipynb', 'k1');
    agent.processes = [
      processInfo(11, 'k1', 64 * MIB, 1),
      processInfo(12, 'k1', 0, 0)
    ];
    await model.refresh();

    const phases: string[] = [];
    model.changed.connect(() => phases.push(model.rows[0].pageout.phase));
    await model.pageout('k1');

    const pageouts = agent.requests.filter(
      r => r.method === Methods.processPageout
    );
    expect(pageouts.map(r => (r.params as PageoutParams).pid)).toEqual([11]);
    expect(typeof (pageouts[0].params as PageoutParams).workDoneToken).toBe(
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
    const { sessions, agent, model } = setup();
    sessions.add('s1', 'a.ipynb', 'k1');
    agent.processes = [processInfo(11, 'k1', 64 * MIB, 1)];
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
      const { sessions, agent, model } = setup();
      const lists = () =>
        agent.requests.filter(r => r.method === Methods.processesList).length;
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

  it('refuses a refresh interval below the minimum', () => {
    const { model } = setup();
    model.refreshInterval = 10;
    expect(model.refreshInterval).toBe(500);
    model.refreshInterval = 5000;
    expect(model.refreshInterval).toBe(5000);
  });
});
