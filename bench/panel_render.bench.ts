/**
 * @jest-environment jsdom
 */
/// <reference lib="dom" />
/// <reference lib="dom.iterable" />
/**
 * The panel with fifty kernels, in jsdom: what one refresh writes to the
 * DOM (mutation records in the kernel list) and how long it takes, when
 * nothing changed, when one kernel changed and when every kernel changed.
 * `make -C bench panel`; it asserts nothing about time, it prints medians.
 */
import type { Session } from '@jupyterlab/services';
import type { TranslationBundle } from '@jupyterlab/translation';
import { Signal } from '@lumino/signaling';

import { InitializeResult, Methods, ProcessInfo } from '../src/common/protocol';
import type { IAgentNotification } from '../src/panel/agentClient';
import { BigmaacModel, IAgentConnection } from '../src/panel/model';
import { PanelView } from '../src/panel/views';

const MIB = 2 ** 20;
const KERNELS = 50;
const ROUNDS = 30;

const trans = {
  __: (text: string, ...args: unknown[]) => fill(text, args),
  _n: (one: string, many: string, n: number, ...args: unknown[]) =>
    fill(n === 1 ? one : many, [n, ...args])
} as unknown as TranslationBundle;

function fill(text: string, args: unknown[]): string {
  return text.replace(/%(\d+)/g, (match, i) =>
    i - 1 < args.length ? String(args[i - 1]) : match
  );
}

/** An agent answering from memory, as the real one would shape it. */
class Agent implements IAgentConnection {
  readonly notificationReceived = new Signal<this, IAgentNotification>(this);
  readonly serverInfo: InitializeResult = {
    protocolVersion: '1.1',
    serverInfo: { name: 'bench agent', version: '0' },
    capabilities: {} as InitializeResult['capabilities']
  };
  processes: ProcessInfo[] = [];
  async request<T>(method: string, params?: any): Promise<T> {
    if (method === Methods.processesList) {
      return { processes: this.processes } as T;
    }
    if (method === Methods.processGet) {
      const process = this.processes.find(p => p.pid === params.pid)!;
      const resident = process.diskBacked.bytes / 4;
      return {
        process: {
          ...process,
          residency: { resident, dirty: 0, dirtyKnown: true, measuredAt: 1 },
          counters: { diskReserved: process.diskBacked.bytes }
        }
      } as T;
    }
    throw new Error(`unexpected ${method}`);
  }
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

test('one refresh of fifty kernels', async () => {
  const sessions = {
    runningChanged: new Signal<unknown, Session.IModel[]>({}),
    models: [] as Session.IModel[],
    async refreshRunning() {
      return;
    },
    running() {
      return this.models[Symbol.iterator]();
    }
  };
  const agent = new Agent();
  for (let i = 0; i < KERNELS; i++) {
    sessions.models.push({
      id: `s${i}`,
      name: `nb${i}.ipynb`,
      path: `nb${String(i).padStart(2, '0')}.ipynb`,
      type: 'notebook',
      kernel: { id: `k${i}`, name: 'python3' }
    });
    agent.processes.push({
      pid: 1000 + i,
      startTime: i,
      uid: 0,
      kernelId: `k${i}`,
      label: '',
      command: 'python',
      swapDir: '/var/tmp/swap',
      diskBacked: { bytes: 64 * MIB, count: 1 },
      peakBytes: 64 * MIB,
      updatedAt: 1
    });
  }
  const model = new BigmaacModel({
    sessions: sessions as unknown as Session.IManager,
    agent,
    fetchKernelStates: async () => []
  });
  const view = new PanelView(model, trans);
  const root = document.createElement('div');
  root.append(...view.nodes);
  document.body.append(root);
  model.changed.connect(view.render, view);
  await model.refresh();
  const list = root.querySelector('.jp-BigmaacPanel-list')!;

  const cases: [string, (round: number) => void][] = [
    ['nothing changed', () => undefined],
    [
      'one kernel changed',
      round => {
        agent.processes[7] = {
          ...agent.processes[7],
          diskBacked: { bytes: (65 + round) * MIB, count: 1 },
          updatedAt: 2 + round
        };
      }
    ],
    [
      'every kernel changed',
      round => {
        agent.processes = agent.processes.map(p => ({
          ...p,
          diskBacked: { bytes: (100 + round) * MIB, count: 2 },
          updatedAt: 1000 + round
        }));
      }
    ]
  ];
  const lines = [
    '| refresh | DOM mutations (median) | ms (median) |',
    '|---|---|---|'
  ];
  for (const [name, change] of cases) {
    const mutations: number[] = [];
    const times: number[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      change(round);
      let records = 0;
      const observer = new MutationObserver(found => (records += found.length));
      observer.observe(list, {
        subtree: true,
        childList: true,
        attributes: true,
        characterData: true
      });
      const start = performance.now();
      await model.refresh();
      times.push(performance.now() - start);
      mutations.push(records + observer.takeRecords().length);
      observer.disconnect();
    }
    lines.push(
      `| ${name} | ${median(mutations)} | ${median(times).toFixed(2)} |`
    );
  }
  process.stdout.write(
    `\n${KERNELS} kernels, ${ROUNDS} refreshes each\n${lines.join('\n')}\n`
  );
  model.dispose();
});
