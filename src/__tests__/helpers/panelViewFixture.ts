/// <reference lib="dom" />
/**
 * The panel's DOM under jsdom, shared by panelView.test.ts and
 * bench/panel_render.bench.ts: fifty notebooks, each with one kernel process,
 * and the panel's view of a model mounted in the document.
 */
import { ProcessInfo } from '../../common/protocol';
import { BigmaacModel } from '../../panel/model';
import { PanelView } from '../../panel/views';
import type { FakeSessions } from './panelModelFixture';
import { trans } from './translation';

const MIB = 2 ** 20;

/** How many notebooks `addNotebooks` opens. */
export const KERNELS = 50;

/** `kernel-00`, `kernel-01`, …: the kernel of notebook `i`. */
export function kernelId(i: number): string {
  return `kernel-${String(i).padStart(2, '0')}`;
}

/**
 * Opens notebooks work/nb00.ipynb … work/nb49.ipynb in `sessions` and adds
 * their kernels' processes (pid 1000 + i, 64 MiB disk-backed) to `processes`.
 */
export function addNotebooks(
  sessions: FakeSessions,
  processes: ProcessInfo[]
): void {
  for (let i = 0; i < KERNELS; i++) {
    sessions.models.push({
      id: `s${i}`,
      name: `nb${i}.ipynb`,
      path: `work/nb${String(i).padStart(2, '0')}.ipynb`,
      type: 'notebook',
      kernel: { id: kernelId(i), name: 'python3' }
    });
    processes.push({
      pid: 1000 + i,
      startTime: i,
      uid: 0,
      kernelId: kernelId(i),
      label: '',
      command: 'python',
      swapDir: '/var/tmp/swap',
      diskBacked: { bytes: 64 * MIB, count: 1 },
      peakBytes: 64 * MIB,
      updatedAt: 1
    });
  }
}

/**
 * The panel's view of `model` in the document, rendered now and on every
 * change of the model; returns the panel's node.
 */
export function mountPanelView(model: BigmaacModel): HTMLElement {
  const view = new PanelView(model, trans);
  const node = document.createElement('div');
  node.append(...view.nodes);
  document.body.append(node);
  model.changed.connect(view.render, view);
  view.render();
  return node;
}
