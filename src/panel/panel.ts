/**
 * The BigMaac side panel: one row per running kernel with its BigMaac state,
 * its disk-backed memory and a "Page out" button.
 *
 * Rows are keyed by kernel id and updated in place, so focus and screen-reader
 * position survive the periodic refresh.
 */

import {
  ITranslator,
  nullTranslator,
  TranslationBundle
} from '@jupyterlab/translation';
import { IDisposable } from '@lumino/disposable';
import { Message } from '@lumino/messaging';
import { Widget } from '@lumino/widgets';

import { formatBytes } from './format';
import { bigmaacIcon } from './icons';
import { BigmaacModel, IKernelRow, PageoutState } from './model';

/** The panel's widget id, also used by the shell to restore its layout. */
export const PANEL_ID = 'jp-bigmaac-panel';

/**
 * A side panel showing BigMaac's view of the running kernels.
 */
export class BigmaacPanel extends Widget {
  constructor(options: BigmaacPanel.IOptions) {
    super();
    this.model = options.model;
    this._trans = (options.translator ?? nullTranslator).load('jupyterlab');
    this.id = PANEL_ID;
    this.addClass('jp-BigmaacPanel');
    this.title.icon = bigmaacIcon;
    this.title.caption = this._trans.__('BigMaac');
    this._buildSkeleton();
    this.model.changed.connect(this._render, this);
    this._render();
  }

  readonly model: BigmaacModel;

  dispose(): void {
    if (this.isDisposed) {
      return;
    }
    this._subscription?.dispose();
    this._subscription = null;
    super.dispose();
  }

  /** Poll only while the panel is visible. */
  protected onAfterShow(msg: Message): void {
    super.onAfterShow(msg);
    if (!this._subscription) {
      this._subscription = this.model.subscribe();
    }
  }

  protected onAfterHide(msg: Message): void {
    super.onAfterHide(msg);
    this._subscription?.dispose();
    this._subscription = null;
  }

  private _buildSkeleton(): void {
    const trans = this._trans;
    const header = document.createElement('header');
    header.className = 'jp-BigmaacPanel-header';
    const heading = document.createElement('h2');
    heading.className = 'jp-BigmaacPanel-title';
    heading.textContent = trans.__('BigMaac');
    header.appendChild(heading);

    this._alert.className = 'jp-BigmaacPanel-alert';
    this._alert.setAttribute('role', 'alert');
    this._alert.hidden = true;

    this._list.className = 'jp-BigmaacPanel-list';
    this._list.setAttribute('aria-label', trans.__('Running kernels'));

    this._empty.className = 'jp-BigmaacPanel-empty';

    this.node.append(header, this._alert, this._list, this._empty);
  }

  private _render(): void {
    const trans = this._trans;
    const model = this.model;

    const problems = [];
    if (model.agentError) {
      problems.push(trans.__('Agent unavailable: %1', model.agentError));
    }
    if (model.serverError) {
      problems.push(trans.__('Server: %1', model.serverError));
    }
    this._alert.textContent = problems.join('\n');
    this._alert.hidden = problems.length === 0;

    const rows = model.rows;
    const seen = new Set<string>();
    rows.forEach((row, index) => {
      seen.add(row.kernelId);
      let view = this._rows.get(row.kernelId);
      if (!view) {
        view = new Private.RowView(trans, kernelId => {
          void this.model.pageout(kernelId);
        });
        this._rows.set(row.kernelId, view);
      }
      view.update(row);
      // Keep DOM order equal to model order without re-inserting unchanged rows.
      if (this._list.children[index] !== view.node) {
        this._list.insertBefore(view.node, this._list.children[index] ?? null);
      }
    });
    for (const [kernelId, view] of this._rows) {
      if (!seen.has(kernelId)) {
        view.node.remove();
        this._rows.delete(kernelId);
      }
    }

    this._empty.hidden = rows.length > 0;
    this._empty.textContent =
      model.lastRefresh === 0
        ? trans.__('Loading…')
        : trans.__('No running kernels.');
  }

  private _trans: TranslationBundle;
  private _alert = document.createElement('div');
  private _list = document.createElement('ul');
  private _empty = document.createElement('p');
  private _rows = new Map<string, Private.RowView>();
  private _subscription: IDisposable | null = null;
}

export namespace BigmaacPanel {
  export interface IOptions {
    model: BigmaacModel;
    translator?: ITranslator;
  }
}

namespace Private {
  /** The DOM of one kernel's row, updated in place. */
  export class RowView {
    constructor(
      private _trans: TranslationBundle,
      onPageout: (kernelId: string) => void
    ) {
      this.node.className = 'jp-BigmaacPanel-row';
      this._name.className = 'jp-BigmaacPanel-name';
      this._kernelName.className = 'jp-BigmaacPanel-kernelName';
      this._state.className = 'jp-BigmaacPanel-state';
      this._bytes.className = 'jp-BigmaacPanel-bytes';
      this._count.className = 'jp-BigmaacPanel-count';
      this._button.className =
        'jp-mod-styled jp-mod-accept jp-BigmaacPanel-pageoutButton';
      this._button.type = 'button';
      this._button.textContent = _trans.__('Page out');
      this._button.addEventListener('click', () => onPageout(this._kernelId));
      this._progress.className = 'jp-BigmaacPanel-progress';
      this._status.className = 'jp-BigmaacPanel-pageoutStatus';
      this._status.setAttribute('role', 'status');
      this._status.setAttribute('aria-live', 'polite');

      const title = div(
        'jp-BigmaacPanel-rowTitle',
        this._name,
        this._kernelName
      );
      const memory = div('jp-BigmaacPanel-memory', this._bytes, this._count);
      const actions = div(
        'jp-BigmaacPanel-actions',
        this._button,
        this._progress,
        this._status
      );
      this.node.append(title, this._state, memory, actions);
    }

    readonly node = document.createElement('li');

    update(row: IKernelRow): void {
      const trans = this._trans;
      this._kernelId = row.kernelId;
      this.node.dataset.kernelId = row.kernelId;
      setText(this._name, row.name);
      this._name.title = row.path || row.kernelId;
      setText(this._kernelName, row.kernelName);

      const { text, kind } = stateText(trans, row);
      setText(this._state, text);
      this._state.dataset.state = kind;

      setText(this._bytes, formatBytes(row.diskBacked.bytes));
      this._bytes.dataset.bytes = String(row.diskBacked.bytes);
      setText(
        this._count,
        trans._n('%1 allocation', '%1 allocations', row.diskBacked.count)
      );

      this._updatePageout(row);
    }

    private _updatePageout(row: IKernelRow): void {
      const trans = this._trans;
      const state: PageoutState = row.pageout;
      const running = state.phase === 'running';
      this._button.disabled = running || row.diskBacked.bytes === 0;
      this._button.setAttribute(
        'aria-label',
        trans.__('Page out the disk-backed memory of %1', row.name)
      );
      this._button.title =
        row.diskBacked.bytes === 0
          ? trans.__('This kernel has no disk-backed memory yet')
          : trans.__('Write the disk-backed memory to disk and free its RAM');
      this.node.dataset.pageout = state.phase;

      this._progress.hidden = !running;
      if (state.phase === 'running') {
        this._progress.max = Math.max(1, state.bytesTotal);
        this._progress.value = Math.min(state.bytesDone, this._progress.max);
        this._progress.setAttribute(
          'aria-label',
          trans.__('Page-out progress of %1', row.name)
        );
      }
      this._status.dataset.phase = state.phase;
      switch (state.phase) {
        case 'idle':
          setText(this._status, '');
          this._status.title = '';
          break;
        case 'running':
          setText(
            this._status,
            trans.__(
              'Paging out… %1 of %2',
              formatBytes(state.bytesDone),
              formatBytes(state.bytesTotal)
            )
          );
          this._status.title = '';
          break;
        case 'done':
          setText(this._status, state.message);
          this._status.title = state.detail;
          break;
        case 'error':
          setText(this._status, state.message);
          this._status.title = state.message;
          break;
      }
    }

    private _kernelId = '';
    private _name = document.createElement('span');
    private _kernelName = document.createElement('span');
    private _state = document.createElement('div');
    private _bytes = document.createElement('span');
    private _count = document.createElement('span');
    private _button = document.createElement('button');
    private _progress = document.createElement('progress');
    private _status = document.createElement('span');
  }

  function stateText(
    trans: TranslationBundle,
    row: IKernelRow
  ): { text: string; kind: 'on' | 'off' | 'unknown' } {
    if (!row.bigmaac) {
      return { text: trans.__('state unknown'), kind: 'unknown' };
    }
    if (row.bigmaac.enabled) {
      return { text: trans.__('on'), kind: 'on' };
    }
    return {
      text: row.bigmaac.reason
        ? trans.__('off: %1', row.bigmaac.reason)
        : trans.__('off'),
      kind: 'off'
    };
  }

  function div(className: string, ...children: HTMLElement[]): HTMLElement {
    const node = document.createElement('div');
    node.className = className;
    node.append(...children);
    return node;
  }

  /** Assign only on change, so unchanged text does not disturb screen readers. */
  function setText(node: HTMLElement, text: string): void {
    if (node.textContent !== text) {
      node.textContent = text;
    }
  }
}
