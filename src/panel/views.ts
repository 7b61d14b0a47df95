/**
 * The BigMaac panel's content: a chart of the whole container's disk-backed
 * memory, banners for OOM-killed kernels, and one row per running kernel with
 * its BigMaac state, memory, residency, swap use, page-out controls and, when
 * expanded, its allocations and the variables owning them.
 *
 * Rows are keyed by kernel id and updated in place (only changed text and
 * attributes are written), so focus and screen-reader position survive the
 * periodic refresh and fifty kernels cost fifty small diffs.
 *
 * Plain DOM, no widget: `panel.ts` hosts it in the side bar.
 */

import type { TranslationBundle } from '@jupyterlab/translation';

import { ChartView } from './chartView';
import { formatAge, formatBytes, formatPercent } from './format';
import {
  BigmaacModel,
  IKernelDetails,
  IKernelRow,
  IOomKill,
  PageoutState
} from './model';

/**
 * The panel's content: header, OOM banners, alerts, the container summary
 * and the kernel list, rendered from the model on `render()`.
 */
export class PanelView {
  constructor(
    readonly model: BigmaacModel,
    private _trans: TranslationBundle
  ) {
    this._chart = new ChartView(
      _trans.__('Disk-backed and resident memory of all kernels over time')
    );
    this._buildSkeleton();
  }

  /** Whether the container chart is shown (the `showChart` panel setting). */
  get showChart(): boolean {
    return !this._chartBox.hidden;
  }
  set showChart(value: boolean) {
    this._chartBox.hidden = !value;
  }

  /** The nodes to append to the panel, in order. */
  readonly nodes: HTMLElement[] = [];

  private _buildSkeleton(): void {
    const trans = this._trans;
    const header = document.createElement('header');
    header.className = 'jp-BigmaacPanel-header';
    const heading = document.createElement('h2');
    heading.className = 'jp-BigmaacPanel-title';
    heading.textContent = trans.__('BigMaac');
    this._idleButton.type = 'button';
    this._idleButton.className =
      'jp-mod-styled jp-BigmaacPanel-button jp-BigmaacPanel-pageoutIdle';
    this._idleButton.textContent = trans.__('Page out idle kernels');
    this._idleButton.title = trans.__(
      'Page out every idle kernel with disk-backed memory; busy kernels are left alone'
    );
    this._idleButton.addEventListener('click', () => {
      this._pagingOutIdle = true;
      this.render();
      void this.model.pageoutIdle().finally(() => {
        this._pagingOutIdle = false;
        this.render();
      });
    });
    header.append(heading, this._idleButton);

    this._oom.className = 'jp-BigmaacPanel-oomList';
    this._oom.setAttribute('role', 'group');
    this._oom.setAttribute(
      'aria-label',
      trans.__('Kernels killed for lack of memory')
    );

    this._alert.className = 'jp-BigmaacPanel-alert';
    this._alert.setAttribute('role', 'alert');
    this._alert.hidden = true;

    const summary = this._summary;
    summary.className = 'jp-BigmaacPanel-summary';
    summary.setAttribute('aria-label', trans.__('All kernels'));
    this._summaryText.className = 'jp-BigmaacPanel-summaryText';
    this._chartBox.append(this._chart.node, Private.legend(trans, true));
    summary.append(this._summaryText, this._chartBox);

    this._list.className = 'jp-BigmaacPanel-list';
    this._list.setAttribute('aria-label', trans.__('Running kernels'));

    this._empty.className = 'jp-BigmaacPanel-empty';

    this.nodes.push(
      header,
      this._oom,
      this._alert,
      summary,
      this._list,
      this._empty
    );
  }

  /** Bring the DOM in line with the model, writing only what changed. */
  render(): void {
    const trans = this._trans;
    const model = this.model;

    const problems = [];
    if (model.agentError) {
      problems.push(trans.__('Agent unavailable: %1', model.agentError));
    }
    if (model.serverError) {
      problems.push(trans.__('Server: %1', model.serverError));
    }
    Private.setText(this._alert, problems.join('\n'));
    Private.setFlag(this._alert, 'hidden', problems.length === 0);

    this._renderOom(model.oomKills);
    this._renderSummary();

    const rows = model.rows;
    const seen = new Set<string>();
    rows.forEach((row, index) => {
      seen.add(row.kernelId);
      let view = this._rows.get(row.kernelId);
      if (!view) {
        view = new Private.RowView(trans, model);
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

    this._idleButton.disabled =
      this._pagingOutIdle ||
      !rows.some(
        r => r.diskBacked.bytes > 0 && r.bigmaac?.executionState === 'idle'
      );
    Private.setFlag(this._empty, 'hidden', rows.length > 0);
    Private.setText(
      this._empty,
      model.lastRefresh === 0
        ? trans.__('Loading…')
        : trans.__('No running kernels.')
    );
  }

  private _renderSummary(): void {
    const trans = this._trans;
    const { diskBacked, resident, kernels, memory, swap } =
      this.model.container;
    const kernelsText =
      resident === null
        ? trans._n(
            'All kernels: %2 disk-backed in %1 kernel',
            'All kernels: %2 disk-backed in %1 kernels',
            kernels,
            formatBytes(diskBacked)
          )
        : trans._n(
            'All kernels: %2 disk-backed, %3 of it in RAM, in %1 kernel',
            'All kernels: %2 disk-backed, %3 of it in RAM, in %1 kernels',
            kernels,
            formatBytes(diskBacked),
            formatBytes(resident)
          );
    const lines = [kernelsText];
    if (memory) {
      lines.push(
        memory.limit === null
          ? trans.__(
              'Container memory: %1 (no limit)',
              formatBytes(memory.usage)
            )
          : trans.__(
              'Container memory: %1 of %2 (%3)',
              formatBytes(memory.usage),
              formatBytes(memory.limit),
              formatPercent(memory.usage, memory.limit)
            )
      );
    }
    if (swap && swap.free !== null && swap.total !== null) {
      lines.push(
        swapSpaceText(trans, {
          free: swap.free,
          total: swap.total,
          onRam: swap.onRam === true
        })
      );
    }
    Private.setText(this._summaryText, lines.join('\n'));
    this._chart.update(this.model.container.history);
  }

  private _renderOom(kills: readonly IOomKill[]): void {
    const seen = new Set<string>();
    kills.forEach((kill, index) => {
      seen.add(kill.key);
      let view = this._oomViews.get(kill.key);
      if (!view) {
        view = new Private.OomBanner(this._trans, this.model, kill);
        this._oomViews.set(kill.key, view);
      }
      view.update(kill);
      if (this._oom.children[index] !== view.node) {
        this._oom.insertBefore(view.node, this._oom.children[index] ?? null);
      }
    });
    for (const [key, view] of this._oomViews) {
      if (!seen.has(key)) {
        view.node.remove();
        this._oomViews.delete(key);
      }
    }
    Private.setFlag(this._oom, 'hidden', kills.length === 0);
  }

  private _chart: ChartView;
  private _summary = document.createElement('section');
  private _chartBox = document.createElement('div');
  private _idleButton = document.createElement('button');
  private _pagingOutIdle = false;
  private _oom = document.createElement('div');
  private _oomViews = new Map<string, Private.OomBanner>();
  private _alert = document.createElement('div');
  private _summaryText = document.createElement('p');
  private _list = document.createElement('ul');
  private _empty = document.createElement('p');
  private _rows = new Map<string, Private.RowView>();
}

/** The swap directory's disk: free space and size; a warning when in RAM. */
function swapSpaceText(
  trans: TranslationBundle,
  space: { free: number; total: number; onRam?: boolean }
): string {
  const free = formatBytes(space.free);
  const total = formatBytes(space.total);
  return space.onRam
    ? trans.__(
        'Swap disk: %1 free of %2 (in RAM: saves no memory)',
        free,
        total
      )
    : trans.__('Swap disk: %1 free of %2', free, total);
}

namespace Private {
  let nextId = 0;

  /** A document-unique id for ARIA references. */
  function uniqueId(prefix: string): string {
    return `${prefix}-${++nextId}`;
  }

  /** The banner of one OOM-killed kernel, with its fixes. */
  export class OomBanner {
    constructor(
      private _trans: TranslationBundle,
      model: BigmaacModel,
      kill: IOomKill
    ) {
      this.node.className = 'jp-BigmaacPanel-oom';
      this.node.setAttribute('role', 'alert');
      this._message.className = 'jp-BigmaacPanel-oomMessage';
      this._status.className = 'jp-BigmaacPanel-oomStatus';
      const actions = div('jp-BigmaacPanel-oomActions');
      this._fix.type = 'button';
      this._fix.className =
        'jp-mod-styled jp-mod-accept jp-BigmaacPanel-button';
      this._fix.addEventListener('click', () => {
        void model.fixOom(
          this._key,
          this._bigmaacOn ? 'lower-threshold' : 'enable'
        );
      });
      const dismiss = document.createElement('button');
      dismiss.type = 'button';
      dismiss.className = 'jp-mod-styled jp-BigmaacPanel-button';
      dismiss.textContent = _trans.__('Dismiss');
      dismiss.setAttribute('aria-label', _trans.__('Dismiss this message'));
      dismiss.addEventListener('click', () => model.dismissOom(this._key));
      actions.append(this._fix, dismiss);
      this.node.append(this._message, actions, this._status);
      this._key = kill.key;
    }

    readonly node = document.createElement('div');

    update(kill: IOomKill): void {
      const trans = this._trans;
      this._key = kill.key;
      this._bigmaacOn = kill.bigmaacOn;
      setData(this.node, 'kernelId', kill.kernelId);
      setText(
        this._message,
        kill.atLowestThreshold
          ? trans.__(
              'The kernel of %1 was killed because the container ran out of memory. Its variables are lost. BigMaac was on with its threshold at %2, the lowest this panel sets, so lowering it and restarting would change nothing: free memory in the notebook (smaller data, del what is no longer needed) or ask for a larger memory limit.',
              kill.name,
              kill.minBigmaacSize
            )
          : kill.bigmaacOn
          ? trans.__(
              'The kernel of %1 was killed because the container ran out of memory. Its variables are lost. BigMaac was on, but memory below its threshold (%2) stays in RAM.',
              kill.name,
              kill.minBigmaacSize || '?'
            )
          : trans.__(
              'The kernel of %1 was killed because the container ran out of memory. Its variables are lost. BigMaac was off for it, so nothing could be moved to disk.',
              kill.name
            )
      );
      setText(
        this._fix,
        kill.bigmaacOn
          ? trans.__('Lower the threshold and restart')
          : trans.__('Turn BigMaac on and restart')
      );
      setFlag(this._fix, 'hidden', kill.atLowestThreshold);
      setFlag(this._fix, 'disabled', !kill.path);
      setAttr(
        this._fix,
        'title',
        kill.path
          ? trans.__('Applies to %1 and restarts its kernel', kill.path)
          : trans.__('This kernel has no notebook whose settings could change')
      );
      setText(this._status, kill.status);
    }

    private _key: string;
    private _bigmaacOn = false;
    private _message = document.createElement('p');
    private _fix = document.createElement('button');
    private _status = document.createElement('p');
  }

  /** The DOM of one kernel's row, updated in place. */
  export class RowView {
    constructor(
      private _trans: TranslationBundle,
      private _model: BigmaacModel
    ) {
      const trans = _trans;
      this.node.className = 'jp-BigmaacPanel-row';
      this._expand.type = 'button';
      this._expand.className = 'jp-BigmaacPanel-expand';
      this._expand.setAttribute('aria-expanded', 'false');
      this._detailsNode.id = uniqueId('jp-BigmaacPanel-details');
      this._expand.setAttribute('aria-controls', this._detailsNode.id);
      this._expand.addEventListener('click', () => {
        void this._model.setExpanded(this._kernelId, !this._expanded);
      });
      this._name.className = 'jp-BigmaacPanel-name';
      this._expand.append(this._name);
      this._language.className = 'jp-BigmaacPanel-language';
      this._kernelName.className = 'jp-BigmaacPanel-kernelName';
      this._state.className = 'jp-BigmaacPanel-state';
      this._warnings.className = 'jp-BigmaacPanel-warnings';
      this._bytes.className = 'jp-BigmaacPanel-bytes';
      this._count.className = 'jp-BigmaacPanel-count';
      this._bar.className = 'jp-BigmaacPanel-bar';
      this._bar.setAttribute('role', 'img');
      this._residentBar.className = 'jp-BigmaacPanel-barResident';
      this._dirtyBar.className = 'jp-BigmaacPanel-barDirty';
      this._bar.append(this._residentBar, this._dirtyBar);
      this._residency.className = 'jp-BigmaacPanel-residency';
      this._swap.className = 'jp-BigmaacPanel-swap';
      this._swapSpace.className = 'jp-BigmaacPanel-swapSpace';
      this._lastPageout.className = 'jp-BigmaacPanel-lastPageout';
      this._button.className =
        'jp-mod-styled jp-mod-accept jp-BigmaacPanel-button jp-BigmaacPanel-pageoutButton';
      this._button.type = 'button';
      this._button.textContent = trans.__('Page out');
      this._button.addEventListener('click', () => {
        void this._model.pageout(this._kernelId);
      });
      this._cancel.className =
        'jp-mod-styled jp-BigmaacPanel-button jp-BigmaacPanel-cancelButton';
      this._cancel.type = 'button';
      this._cancel.textContent = trans.__('Cancel');
      this._cancel.addEventListener('click', () =>
        this._model.cancelPageout(this._kernelId)
      );
      this._progress.className = 'jp-BigmaacPanel-progress';
      // Outside the live region: a tick of progress is not worth announcing.
      this._progressText.className = 'jp-BigmaacPanel-progressText';
      this._status.className = 'jp-BigmaacPanel-pageoutStatus';
      this._status.setAttribute('role', 'status');
      this._status.setAttribute('aria-live', 'polite');
      this._detailsNode.className = 'jp-BigmaacPanel-details';
      this._detailsNode.hidden = true;

      const title = div(
        'jp-BigmaacPanel-rowTitle',
        this._expand,
        this._language,
        this._kernelName
      );
      const memory = div(
        'jp-BigmaacPanel-memory',
        this._bytes,
        this._count,
        this._residency
      );
      const actions = div(
        'jp-BigmaacPanel-actions',
        this._button,
        this._cancel,
        this._progress,
        this._status,
        this._progressText
      );
      this.node.append(
        title,
        this._state,
        this._warnings,
        memory,
        this._bar,
        this._swap,
        this._swapSpace,
        this._lastPageout,
        actions,
        this._detailsNode
      );
    }

    readonly node = document.createElement('li');

    update(row: IKernelRow): void {
      const trans = this._trans;
      this._kernelId = row.kernelId;
      this._expanded = row.expanded;
      setData(this.node, 'kernelId', row.kernelId);
      setText(this._name, row.name);
      setAttr(this._name, 'title', row.path || row.kernelId);
      setAttr(this._expand, 'aria-expanded', String(row.expanded));
      setAttr(
        this._expand,
        'aria-label',
        row.expanded
          ? trans.__('Hide the allocations of %1', row.name)
          : trans.__('Show the allocations of %1', row.name)
      );
      setText(this._language, row.language);
      setFlag(this._language, 'hidden', !row.language);
      setText(this._kernelName, row.kernelName);

      const { text, kind } = stateText(trans, row);
      setText(this._state, text);
      setData(this._state, 'state', kind);
      // What the server did not apply as asked, where the user sees the kernel.
      const warnings = row.bigmaac?.warnings ?? [];
      setFlag(this._warnings, 'hidden', warnings.length === 0);
      setText(
        this._warnings,
        warnings.length ? trans.__('Not applied: %1', warnings.join('; ')) : ''
      );

      setText(this._bytes, formatBytes(row.diskBacked.bytes));
      setData(this._bytes, 'bytes', String(row.diskBacked.bytes));
      setText(
        this._count,
        trans._n('%1 allocation', '%1 allocations', row.diskBacked.count)
      );
      this._updateResidency(row);
      this._updateSwap(row);
      this._updateLastPageout(row);
      this._updatePageout(row);
      this._updateDetails(row);
    }

    private _updateResidency(row: IKernelRow): void {
      const trans = this._trans;
      const total = row.diskBacked.bytes;
      const residency = row.residency;
      const hasMemory = total > 0;
      setFlag(this._bar, 'hidden', !hasMemory);
      setFlag(this._residency, 'hidden', !hasMemory);
      if (!hasMemory) {
        return;
      }
      if (!residency) {
        setText(this._residency, trans.__('in RAM: not measured'));
        setData(this._residency, 'resident', '');
        setAttr(this._bar, 'aria-label', trans.__('Residency not measured'));
        setWidth(this._residentBar, '0%');
        setWidth(this._dirtyBar, '0%');
        return;
      }
      const inRam = formatBytes(residency.resident);
      const dirty = formatBytes(residency.dirty);
      setText(
        this._residency,
        residency.dirtyKnown
          ? trans.__(
              'in RAM: %1 (%2), dirty %3',
              inRam,
              formatPercent(residency.resident, total),
              dirty
            )
          : trans.__(
              'in RAM: %1 (%2)',
              inRam,
              formatPercent(residency.resident, total)
            )
      );
      setData(this._residency, 'resident', String(residency.resident));
      setAttr(
        this._bar,
        'aria-label',
        residency.dirtyKnown
          ? trans.__(
              '%1 of %2 in RAM, %3 dirty; the rest is on disk',
              inRam,
              formatBytes(total),
              dirty
            )
          : trans.__(
              '%1 of %2 in RAM; the rest is on disk',
              inRam,
              formatBytes(total)
            )
      );
      setWidth(this._residentBar, share(residency.resident, total));
      setWidth(
        this._dirtyBar,
        residency.dirtyKnown ? share(residency.dirty, total) : '0%'
      );
    }

    private _updateSwap(row: IKernelRow): void {
      const trans = this._trans;
      const { dir, reserved, free, total } = row.swap;
      setFlag(this._swap, 'hidden', !dir);
      setText(
        this._swap,
        reserved === null
          ? trans.__('Swap: %1', dir)
          : trans.__('Swap: %1 (%2 reserved)', dir, formatBytes(reserved))
      );
      // Its own line, so the swap line reads the same on servers that do not report space.
      const known = !!dir && free !== null && total !== null;
      setFlag(this._swapSpace, 'hidden', !known);
      setText(
        this._swapSpace,
        known ? swapSpaceText(trans, { free: free!, total: total! }) : ''
      );
      setAttr(this._swap, 'title', dir);
    }

    private _updateLastPageout(row: IKernelRow): void {
      const trans = this._trans;
      const last = row.lastPageout;
      setFlag(this._lastPageout, 'hidden', !last);
      if (!last) {
        return;
      }
      const when = new Date(last.at).toLocaleTimeString();
      const why =
        last.reason === 'idle'
          ? trans.__('idle')
          : last.reason === 'pressure'
            ? trans.__('memory pressure')
            : trans.__('requested');
      setText(
        this._lastPageout,
        last.ok
          ? trans.__(
              'Last page-out: %1 (%2), released %3',
              when,
              why,
              formatBytes(last.released)
            )
          : trans.__('Last page-out: %1 (%2) failed: %3', when, why, last.error)
      );
      setData(this._lastPageout, 'ok', String(last.ok));
    }

    private _updatePageout(row: IKernelRow): void {
      const trans = this._trans;
      const state: PageoutState = row.pageout;
      const running = state.phase === 'running';
      setFlag(this._button, 'disabled', running || row.diskBacked.bytes === 0);
      setAttr(
        this._button,
        'aria-label',
        trans.__('Page out the disk-backed memory of %1', row.name)
      );
      setAttr(
        this._button,
        'title',
        row.diskBacked.bytes === 0
          ? trans.__('This kernel has no disk-backed memory yet')
          : trans.__('Write the disk-backed memory to disk and free its RAM')
      );
      setFlag(this._cancel, 'hidden', !running);
      setAttr(
        this._cancel,
        'aria-label',
        trans.__('Cancel the page-out of %1', row.name)
      );
      setData(this.node, 'pageout', state.phase);

      setFlag(this._progress, 'hidden', !running);
      setFlag(this._progressText, 'hidden', !running);
      if (state.phase === 'running') {
        this._progress.max = Math.max(1, state.bytesTotal);
        this._progress.value = Math.min(state.bytesDone, this._progress.max);
        setAttr(
          this._progress,
          'aria-label',
          trans.__('Page-out progress of %1', row.name)
        );
      }
      setData(this._status, 'phase', state.phase);
      switch (state.phase) {
        case 'idle':
          setText(this._status, '');
          setAttr(this._status, 'title', '');
          break;
        case 'running':
          // The live region says only that it started (and, below, how it ended).
          setText(this._status, trans.__('Paging out…'));
          setAttr(this._status, 'title', '');
          setText(
            this._progressText,
            trans.__(
              '%1 of %2',
              formatBytes(state.bytesDone),
              formatBytes(state.bytesTotal)
            )
          );
          break;
        case 'done':
          setText(this._status, state.message);
          setAttr(this._status, 'title', state.detail);
          break;
        case 'cancelled':
        case 'error':
          setText(this._status, state.message);
          setAttr(this._status, 'title', state.message);
          break;
      }
    }

    private _updateDetails(row: IKernelRow): void {
      setFlag(this._detailsNode, 'hidden', !row.expanded);
      if (!row.expanded || !row.details) {
        if (this._detailsView) {
          this._detailsView.node.remove();
          this._detailsView = null;
        }
        return;
      }
      if (!this._detailsView) {
        this._detailsView = new DetailsView(this._trans, this._model, row.name);
        this._detailsNode.append(this._detailsView.node);
      }
      this._detailsView.update(row, row.details);
    }

    private _kernelId = '';
    private _expanded = false;
    private _expand = document.createElement('button');
    private _name = document.createElement('span');
    private _language = document.createElement('span');
    private _kernelName = document.createElement('span');
    private _state = document.createElement('div');
    private _warnings = document.createElement('div');
    private _bytes = document.createElement('span');
    private _count = document.createElement('span');
    private _residency = document.createElement('span');
    private _bar = document.createElement('div');
    private _residentBar = document.createElement('span');
    private _dirtyBar = document.createElement('span');
    private _swap = document.createElement('div');
    private _swapSpace = document.createElement('div');
    private _lastPageout = document.createElement('div');
    private _button = document.createElement('button');
    private _cancel = document.createElement('button');
    private _progress = document.createElement('progress');
    private _progressText = document.createElement('span');
    private _status = document.createElement('span');
    private _detailsNode = document.createElement('div');
    private _detailsView: DetailsView | null = null;
  }

  /** Most allocations listed in an expanded row; the rest are counted. */
  const MAX_LISTED = 50;

  /** An expanded kernel: its chart, its allocations and their variables. */
  class DetailsView {
    constructor(
      private _trans: TranslationBundle,
      private _model: BigmaacModel,
      name: string
    ) {
      const trans = _trans;
      this.node.className = 'jp-BigmaacPanel-detailsBody';
      this._chart = new ChartView(
        trans.__('Disk-backed and resident memory of %1 over time', name)
      );
      this._error.className = 'jp-BigmaacPanel-detailsError';
      this._table.className = 'jp-BigmaacPanel-allocations';
      const caption = document.createElement('caption');
      caption.textContent = trans.__('Disk-backed allocations');
      const head = document.createElement('thead');
      const headRow = document.createElement('tr');
      for (const label of [
        trans.__('Size'),
        trans.__('Age'),
        trans.__('In RAM'),
        trans.__('Variables')
      ]) {
        const th = document.createElement('th');
        th.scope = 'col';
        th.textContent = label;
        headRow.append(th);
      }
      head.append(headRow);
      this._table.append(caption, head, this._body);
      this._more.className = 'jp-BigmaacPanel-more';
      this._variables.className = 'jp-BigmaacPanel-variables';
      this._variables.setAttribute('role', 'status');
      this._refreshVariables.type = 'button';
      this._refreshVariables.className =
        'jp-mod-styled jp-BigmaacPanel-button jp-BigmaacPanel-refreshVariables';
      this._refreshVariables.textContent = trans.__('Find variables again');
      this._refreshVariables.addEventListener('click', () => {
        void this._model.inspectVariables(this._kernelId);
      });
      this.node.append(
        this._chart.node,
        legend(trans),
        this._error,
        this._table,
        this._more,
        div(
          'jp-BigmaacPanel-variablesLine',
          this._variables,
          this._refreshVariables
        )
      );
    }

    readonly node = document.createElement('div');

    update(row: IKernelRow, details: IKernelDetails): void {
      const trans = this._trans;
      this._kernelId = row.kernelId;
      this._chart.update(row.history);
      setText(this._error, details.error);
      setFlag(this._error, 'hidden', !details.error);

      const listed = details.allocations.slice(0, MAX_LISTED);
      const now = Date.now();
      // Rows keyed by allocation, their cells updated in place: the age
      // changes on every refresh, and nothing else should move.
      const seen = new Set<string>();
      listed.forEach((a, index) => {
        const key = `${a.pid}:${a.address}`;
        seen.add(key);
        let tr = this._allocationRows.get(key);
        if (!tr) {
          tr = document.createElement('tr');
          tr.className = 'jp-BigmaacPanel-allocation';
          tr.dataset.address = String(a.address);
          for (let i = 0; i < 4; i++) {
            tr.append(document.createElement('td'));
          }
          this._allocationRows.set(key, tr);
        }
        const names = a.variables
          .map(v => trans.__('%1: %2 %3', v.name, v.type, v.shape))
          .join(', ');
        const texts = [
          formatBytes(a.size),
          formatAge(now - a.createdAt),
          a.resident === null ? '—' : formatPercent(a.resident, a.size),
          names
        ];
        texts.forEach((text, i) => setText(tr!.cells[i], text));
        if (this._body.rows[index] !== tr) {
          this._body.insertBefore(tr, this._body.rows[index] ?? null);
        }
      });
      for (const [key, tr] of this._allocationRows) {
        if (!seen.has(key)) {
          tr.remove();
          this._allocationRows.delete(key);
        }
      }
      setFlag(this._table, 'hidden', listed.length === 0);
      const hidden = details.allocationsTotal - listed.length;
      setText(
        this._more,
        listed.length === 0
          ? trans.__('No disk-backed allocations.')
          : hidden > 0
            ? trans._n(
                'and %1 smaller allocation',
                'and %1 smaller allocations',
                hidden
              )
            : ''
      );

      const variables = details.variables;
      this._refreshVariables.hidden =
        variables.status === 'unsupported' || variables.status === 'loading';
      setData(this._variables, 'status', variables.status);
      switch (variables.status) {
        case 'unsupported':
          setText(
            this._variables,
            trans.__(
              'Variables are shown only for Python kernels (this one is %1).',
              variables.language || trans.__('another language')
            )
          );
          break;
        case 'busy':
          setText(
            this._variables,
            trans.__(
              'The kernel is busy; variables are looked up when it is idle.'
            )
          );
          break;
        case 'loading':
          setText(this._variables, trans.__('Looking up variables…'));
          break;
        case 'error':
          setText(
            this._variables,
            trans.__('Could not look up variables: %1', variables.message)
          );
          break;
        case 'ready': {
          const owned = details.allocations.reduce(
            (n, a) => n + a.variables.length,
            0
          );
          setText(
            this._variables,
            trans._n(
              'Variables looked up at %2: %1 owns disk-backed memory.',
              'Variables looked up at %2: %1 own disk-backed memory.',
              owned,
              new Date(variables.at).toLocaleTimeString()
            )
          );
          break;
        }
      }
    }

    private _kernelId = '';
    private _chart: ChartView;
    private _error = document.createElement('p');
    private _table = document.createElement('table');
    private _body = document.createElement('tbody');
    private _allocationRows = new Map<string, HTMLTableRowElement>();
    private _more = document.createElement('p');
    private _variables = document.createElement('span');
    private _refreshVariables = document.createElement('button');
  }

  /** The chart's legend: which line is which (the container's lines too). */
  export function legend(
    trans: TranslationBundle,
    container = false
  ): HTMLElement {
    const node = div('jp-BigmaacPanel-legend');
    node.setAttribute('aria-hidden', 'true');
    const kinds = [
      ['diskBacked', trans.__('disk-backed')],
      ['resident', trans.__('in RAM')]
    ];
    if (container) {
      kinds.push(
        ['containerUsage', trans.__('container memory')],
        ['containerLimit', trans.__('container limit')]
      );
    }
    for (const [kind, label] of kinds) {
      const item = document.createElement('span');
      item.className = `jp-BigmaacPanel-legendItem jp-mod-${kind}`;
      item.textContent = label;
      node.append(item);
    }
    return node;
  }

  function share(part: number, total: number): string {
    return total > 0
      ? `${Math.min(100, Math.max(0, (part / total) * 100)).toFixed(1)}%`
      : '0%';
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

  function div(className: string, ...children: Node[]): HTMLElement {
    const node = document.createElement('div');
    node.className = className;
    node.append(...children);
    return node;
  }

  /** Assign only on change, so unchanged text does not disturb screen readers. */
  export function setText(node: HTMLElement, text: string): void {
    if (node.textContent !== text) {
      node.textContent = text;
    }
  }

  function setAttr(node: HTMLElement, name: string, value: string): void {
    if (node.getAttribute(name) !== value) {
      node.setAttribute(name, value);
    }
  }

  /** Assign `hidden` or `disabled` only on change (each assignment is a DOM mutation). */
  export function setFlag(
    node: HTMLElement & { disabled?: boolean },
    flag: 'hidden' | 'disabled',
    value: boolean
  ): void {
    if (node[flag] !== value) {
      node[flag] = value;
    }
  }

  function setWidth(node: HTMLElement, width: string): void {
    if (node.style.width !== width) {
      node.style.width = width;
    }
  }

  function setData(node: HTMLElement, key: string, value: string): void {
    if (node.dataset[key] !== value) {
      node.dataset[key] = value;
    }
  }
}
