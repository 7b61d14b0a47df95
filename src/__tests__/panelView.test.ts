/**
 * @jest-environment jsdom
 */
/// <reference lib="dom" />
/// <reference lib="dom.iterable" />
/**
 * The panel's DOM (`views.ts`, the content of the side-bar widget): fifty kernels render as fifty rows, and a refresh that
 * changes one kernel touches only that kernel's row. Also the OOM banner,
 * the residency bar, the expanded details and their ARIA attributes.
 */
import type { Session } from '@jupyterlab/services';
import { Signal } from '@lumino/signaling';

import {
  ContainerMemory,
  InitializeResult,
  Methods,
  ProcessInfo
} from '../common/protocol';
import type { IAgentNotification } from '../panel/agentClient';
import { BigmaacModel, IAgentConnection } from '../panel/model';
import type { IKernelState } from '../panel/serverApi';
import { FakeSessions } from './helpers/panelModelFixture';
import {
  addNotebooks,
  KERNELS,
  kernelId,
  mountPanelView
} from './helpers/panelViewFixture';

const MIB = 2 ** 20;

class Agent implements IAgentConnection {
  readonly notificationReceived = new Signal<this, IAgentNotification>(this);
  processes: ProcessInfo[] = [];
  resident = new Map<number, number>();
  /** How old the allocations are, ms. */
  allocationAge = 60_000;
  /** What `memory/get` answers; `undefined`: the agent lacks `containerMemory`. */
  container: ContainerMemory | null | undefined = undefined;
  get serverInfo(): InitializeResult {
    return {
      protocolVersion: '1.1',
      serverInfo: { name: 'fake agent', version: '0.0.0' },
      capabilities: {
        containerMemory: this.container !== undefined
      } as InitializeResult['capabilities']
    };
  }
  async request<T>(method: string, params?: any): Promise<T> {
    if (method === Methods.memoryGet && this.container !== undefined) {
      return { container: this.container, measuredAt: 1 } as T;
    }
    if (method === Methods.processesList) {
      return { processes: this.processes } as T;
    }
    if (method === Methods.processGet) {
      const process = this.processes.find(p => p.pid === params.pid)!;
      const resident = this.resident.get(params.pid) ?? 0;
      return {
        process: {
          ...process,
          residency: {
            resident,
            dirty: resident / 2,
            dirtyKnown: true,
            measuredAt: 1
          },
          counters: { diskReserved: process.diskBacked.bytes },
          allocationsTotal: 1,
          allocations: [
            {
              address: 0x7f0000000000,
              size: process.diskBacked.bytes,
              createdAt: Date.now() - this.allocationAge,
              tier: 'big',
              resident,
              dirty: 0
            }
          ]
        }
      } as T;
    }
    if (method === Methods.processPageout) {
      const total = this.processes.find(p => p.pid === params.pid)!.diskBacked
        .bytes;
      for (const part of [1, 2, 3]) {
        this.notificationReceived.emit({
          method: Methods.progress,
          params: {
            token: params.workDoneToken,
            value: {
              kind: 'report',
              bytesDone: (total * part) / 4,
              bytesTotal: total,
              percentage: part * 25
            }
          }
        });
        await new Promise(resolve => setTimeout(resolve, 0));
      }
      return {
        pid: params.pid,
        bytesWritten: total,
        durationMs: 300,
        residentBefore: total,
        residentAfter: 0
      } as T;
    }
    throw new Error(`unexpected ${method}`);
  }
}

function setup(
  states: IKernelState[] = [],
  options: Partial<BigmaacModel.IOptions> = {}
) {
  const sessions = new FakeSessions();
  const agent = new Agent();
  addNotebooks(sessions, agent.processes);
  for (const { pid } of agent.processes) {
    agent.resident.set(pid, 16 * MIB);
  }
  const model = new BigmaacModel({
    sessions: sessions as unknown as Session.IManager,
    agent,
    fetchKernelStates: async () => states,
    languageOf: () => 'python',
    inspectVariables: async () => [
      {
        name: 'frame',
        type: 'numpy.ndarray',
        shape: '(1024, 8192)',
        address: 0x7f0000000000 + 4096,
        nbytes: 64 * MIB - 4096
      }
    ],
    ...options
  });
  const panel = { node: mountPanelView(model) };
  return { sessions, agent, model, panel };
}

describe('BigmaacPanel', () => {
  afterEach(() => {
    document.body.innerHTML = '';
  });

  it('renders fifty kernels, and a refresh that changes one touches only its row', async () => {
    const { agent, model, panel } = setup();
    await model.refresh();
    const rows = panel.node.querySelectorAll('.jp-BigmaacPanel-row');
    expect(rows).toHaveLength(KERNELS);
    expect(rows[0].querySelector('.jp-BigmaacPanel-name')!.textContent).toBe(
      'nb00.ipynb'
    );

    const before = [...rows];
    const records: MutationRecord[] = [];
    const observer = new MutationObserver(found => records.push(...found));
    observer.observe(panel.node.querySelector('.jp-BigmaacPanel-list')!, {
      subtree: true,
      childList: true,
      attributes: true,
      characterData: true
    });
    // Nothing changed: nothing is written.
    let renders = 0;
    model.changed.connect(() => renders++);
    await model.refresh();
    expect(renders).toBe(1);
    expect(observer.takeRecords()).toEqual([]);

    agent.processes[7] = {
      ...agent.processes[7],
      diskBacked: { bytes: 128 * MIB, count: 2 },
      updatedAt: 2
    };
    await model.refresh();
    records.push(...observer.takeRecords());
    observer.disconnect();
    // A handful of writes (bytes, count, residency, bar), not a rebuilt row.
    expect(records.length).toBeLessThan(20);

    const after = [...panel.node.querySelectorAll('.jp-BigmaacPanel-row')];
    expect(after).toEqual(before);
    const touched = new Set(
      records.map(r => {
        const node = r.target.nodeType === 1 ? r.target : r.target.parentNode;
        return (node as Element).closest('li')?.getAttribute('data-kernel-id');
      })
    );
    expect([...touched]).toEqual([kernelId(7)]);
    expect(after[7].querySelector('.jp-BigmaacPanel-bytes')!.textContent).toBe(
      '128.0 MiB'
    );
  });

  it("shows the container's memory and the swap disk's free space", async () => {
    const { model, panel, agent } = setup([], {
      fetchSwapSpace: async () => ({
        dir: '/var/tmp/swap',
        free: 40 * 1024 * MIB,
        total: 100 * 1024 * MIB,
        fsType: 'ext4',
        onRam: false
      })
    });
    agent.container = { usage: 1024 * MIB, limit: 4096 * MIB, source: 'cgroup-v2' };
    await model.refresh();
    expect(
      panel.node.querySelector('.jp-BigmaacPanel-summaryText')!.textContent
    ).toBe(
      [
        'All kernels: 3.13 GiB disk-backed, 800.0 MiB of it in RAM, in 50 kernels',
        'Container memory: 1.00 GiB of 4.00 GiB (25%)',
        'Swap disk: 40.0 GiB free of 100.0 GiB'
      ].join('\n')
    );
    const row = panel.node.querySelector('.jp-BigmaacPanel-row')!;
    expect(row.querySelector('.jp-BigmaacPanel-swap')!.textContent).toBe(
      'Swap: /var/tmp/swap (64.0 MiB reserved)'
    );
    const space = row.querySelector<HTMLElement>('.jp-BigmaacPanel-swapSpace')!;
    expect(space.textContent).toBe('Swap disk: 40.0 GiB free of 100.0 GiB');
    expect(space.hidden).toBe(false);
    const chart = panel.node.querySelector('.jp-BigmaacChart')!;
    expect(
      chart.querySelector('.jp-BigmaacChart-containerLimit')!.getAttribute('d')
    ).toBe('M0,0');
  });

  it('shows residency as a labelled bar, and the swap directory', async () => {
    const { model, panel } = setup();
    await model.refresh();
    const row = panel.node.querySelector('.jp-BigmaacPanel-row')!;
    const bar = row.querySelector<HTMLElement>('.jp-BigmaacPanel-bar')!;
    expect(bar.getAttribute('role')).toBe('img');
    expect(bar.getAttribute('aria-label')).toBe(
      '16.0 MiB of 64.0 MiB in RAM, 8.00 MiB dirty; the rest is on disk'
    );
    expect(
      row.querySelector<HTMLElement>('.jp-BigmaacPanel-barResident')!.style
        .width
    ).toBe('25.0%');
    expect(row.querySelector('.jp-BigmaacPanel-residency')!.textContent).toBe(
      'in RAM: 16.0 MiB (25%), dirty 8.00 MiB'
    );
    expect(row.querySelector('.jp-BigmaacPanel-swap')!.textContent).toBe(
      'Swap: /var/tmp/swap (64.0 MiB reserved)'
    );
    // No free space reported (an older server): no line for it.
    expect(
      row.querySelector<HTMLElement>('.jp-BigmaacPanel-swapSpace')!.hidden
    ).toBe(true);
    expect(
      panel.node.querySelector('.jp-BigmaacPanel-summaryText')!.textContent
    ).toBe(
      'All kernels: 3.13 GiB disk-backed, 800.0 MiB of it in RAM, in 50 kernels'
    );
  });

  it('leaves dirty bytes out where the kernel cannot count them', async () => {
    const { agent, model, panel } = setup();
    const request = agent.request.bind(agent);
    agent.request = async <T>(method: string, params?: any): Promise<T> => {
      const answer: any = await request(method, params);
      if (method === Methods.processGet) {
        answer.process.residency.dirtyKnown = false;
        answer.process.residency.dirty = 0;
      }
      return answer as T;
    };
    await model.refresh();
    const row = panel.node.querySelector('.jp-BigmaacPanel-row')!;
    expect(row.querySelector('.jp-BigmaacPanel-residency')!.textContent).toBe(
      'in RAM: 16.0 MiB (25%)'
    );
    expect(
      row.querySelector('.jp-BigmaacPanel-bar')!.getAttribute('aria-label')
    ).toBe('16.0 MiB of 64.0 MiB in RAM; the rest is on disk');
  });

  it('expands a kernel with the keyboard-reachable toggle', async () => {
    const { model, panel } = setup();
    await model.refresh();
    const row = panel.node.querySelector('.jp-BigmaacPanel-row')!;
    const toggle = row.querySelector<HTMLButtonElement>(
      '.jp-BigmaacPanel-expand'
    )!;
    expect(toggle.tagName).toBe('BUTTON');
    expect(toggle.getAttribute('aria-expanded')).toBe('false');
    const details = document.getElementById(
      toggle.getAttribute('aria-controls')!
    )!;
    expect(details.hidden).toBe(true);

    toggle.click();
    await new Promise(resolve => setTimeout(resolve, 0));
    await model.refresh();
    expect(toggle.getAttribute('aria-expanded')).toBe('true');
    expect(details.hidden).toBe(false);
    const cells = [...details.querySelectorAll('tbody td')].map(
      td => td.textContent
    );
    expect(cells).toEqual([
      '64.0 MiB',
      '1 min',
      '25%',
      'frame: numpy.ndarray (1024, 8192)'
    ]);
    expect(
      details.querySelector('.jp-BigmaacPanel-variables')!.textContent
    ).toMatch(/^Variables looked up at .+: 1 owns disk-backed memory\.$/);
  });

  it('updates an expanded kernel’s allocations in place on a refresh', async () => {
    const { agent, model, panel } = setup();
    await model.refresh();
    await model.setExpanded(kernelId(0), true);
    const body = panel.node.querySelector(
      '.jp-BigmaacPanel-allocations tbody'
    )!;
    const rows = [...body.querySelectorAll('tr')];
    expect(rows).toHaveLength(1);
    const records: MutationRecord[] = [];
    const observer = new MutationObserver(found => records.push(...found));
    observer.observe(body, {
      subtree: true,
      childList: true,
      characterData: true
    });
    // Time passes: the age column changes, nothing else.
    agent.allocationAge = 120_000;
    await model.refresh();
    await model.refresh();
    records.push(...observer.takeRecords());
    observer.disconnect();
    // The same row nodes, and no row or cell replaced.
    expect([...body.querySelectorAll('tr')]).toEqual(rows);
    expect(
      records.filter(r => r.type === 'childList' && r.target === body)
    ).toEqual([]);
    expect(
      [...rows[0].querySelectorAll('td')].map(td => td.textContent)
    ).toEqual(['64.0 MiB', '2 min', '25%', 'frame: numpy.ndarray (1024, 8192)']);
  });

  it('announces a page-out’s start and end, not every tick of progress', async () => {
    const { model, panel } = setup();
    await model.refresh();
    const row = panel.node.querySelector('.jp-BigmaacPanel-row')!;
    const live = row.querySelector<HTMLElement>(
      '.jp-BigmaacPanel-pageoutStatus'
    )!;
    expect(live.getAttribute('aria-live')).toBe('polite');
    const progressText = row.querySelector<HTMLElement>(
      '.jp-BigmaacPanel-progressText'
    )!;
    const announced: string[] = [];
    const shown: string[] = [];
    const observer = new MutationObserver(() => {
      if (announced[announced.length - 1] !== live.textContent) {
        announced.push(live.textContent ?? '');
      }
      const text = progressText.textContent ?? '';
      if (!progressText.hidden && shown[shown.length - 1] !== text) {
        shown.push(text);
      }
    });
    observer.observe(row, {
      subtree: true,
      childList: true,
      characterData: true,
      attributes: true
    });
    await model.pageout(kernelId(0));
    await new Promise(resolve => setTimeout(resolve, 0));
    observer.disconnect();
    expect(announced).toEqual(['Paging out…', 'Paged out 64.0 MiB in 0.30 s']);
    // The progress is still shown, outside the live region.
    expect(shown).toEqual(
      expect.arrayContaining(['16.0 MiB of 64.0 MiB', '48.0 MiB of 64.0 MiB'])
    );
    expect(progressText.closest('[aria-live]')).toBeNull();
    expect(progressText.hidden).toBe(true);
  });

  it('says on the row what the server did not apply', async () => {
    const ignored =
      "user setting minBigmaacSize ignored: 'lots' is not a size";
    const { model, panel } = setup([
      {
        id: kernelId(0),
        name: 'python3',
        bigmaac: { enabled: true, reason: '', warnings: [ignored] }
      }
    ]);
    await model.refresh();
    const [first, second] = panel.node.querySelectorAll<HTMLElement>(
      '.jp-BigmaacPanel-warnings'
    );
    expect(first.hidden).toBe(false);
    expect(first.textContent).toBe(`Not applied: ${ignored}`);
    expect(second.hidden).toBe(true);
  });

  it('says a restart would not help when the threshold is at its lowest', async () => {
    const { model, panel } = setup([
      {
        id: kernelId(3),
        name: 'python3',
        bigmaac: {
          enabled: true,
          reason: '',
          launches: 2,
          previousOomKilled: true,
          settings: { min_bigmaac_size: '1M' }
        }
      }
    ]);
    await model.refresh();
    const banner = panel.node.querySelector('.jp-BigmaacPanel-oom')!;
    expect(
      banner.querySelector('.jp-BigmaacPanel-oomMessage')!.textContent
    ).toMatch(
      /BigMaac was on with its threshold at 1M, the lowest this panel sets, so lowering it and restarting would change nothing/
    );
    const visible = [...banner.querySelectorAll('button')]
      .filter(b => !b.hidden)
      .map(b => b.textContent);
    expect(visible).toEqual(['Dismiss']);
  });

  it('shows an OOM banner that says what happened and offers the fix', async () => {
    const { model, panel } = setup([
      {
        id: kernelId(3),
        name: 'python3',
        bigmaac: {
          enabled: false,
          reason: 'disabled',
          launches: 2,
          previousOomKilled: true
        }
      }
    ]);
    await model.refresh();
    const banners = panel.node.querySelectorAll('.jp-BigmaacPanel-oom');
    expect(banners).toHaveLength(1);
    expect(banners[0].getAttribute('role')).toBe('alert');
    expect(
      banners[0].querySelector('.jp-BigmaacPanel-oomMessage')!.textContent
    ).toBe(
      'The kernel of nb03.ipynb was killed because the container ran out of memory. Its variables are lost. BigMaac was off for it, so nothing could be moved to disk.'
    );
    const buttons = [...banners[0].querySelectorAll('button')].map(
      b => b.textContent
    );
    expect(buttons).toEqual(['Turn BigMaac on and restart', 'Dismiss']);
    banners[0]
      .querySelectorAll('button')[1]
      .dispatchEvent(new MouseEvent('click'));
    expect(panel.node.querySelectorAll('.jp-BigmaacPanel-oom')).toHaveLength(0);
  });
});
