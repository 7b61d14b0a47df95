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
import { Signal } from '@lumino/signaling';

import { InitializeResult, Methods, ProcessInfo } from '../src/common/protocol';
import type { IAgentNotification } from '../src/panel/agentClient';
import { BigmaacModel, IAgentConnection } from '../src/panel/model';
import { FakeSessions } from '../src/__tests__/helpers/panelModelFixture';
import {
  addNotebooks,
  KERNELS,
  mountPanelView
} from '../src/__tests__/helpers/panelViewFixture';

const MIB = 2 ** 20;
const ROUNDS = 30;

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
  const sessions = new FakeSessions();
  const agent = new Agent();
  addNotebooks(sessions, agent.processes);
  const model = new BigmaacModel({
    sessions: sessions as unknown as Session.IManager,
    agent,
    fetchKernelStates: async () => []
  });
  const root = mountPanelView(model);
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
