/**
 * The status bar item: disk-backed and resident bytes over every kernel.
 * A button (Enter or Space, or a click) that opens the BigMaac panel.
 */

import type { TranslationBundle } from '@jupyterlab/translation';
import { Widget } from '@lumino/widgets';

import { bigmaacIcon, formatBytes } from '../panel';
import { ITotals } from './totals';

export class BigmaacStatus extends Widget {
  constructor(
    private readonly _open: () => void,
    private readonly _trans: TranslationBundle
  ) {
    super({ node: document.createElement('button') });
    const button = this.node as HTMLButtonElement;
    button.type = 'button';
    this.addClass('jp-BigmaacStatus');
    this.addClass('jp-StatusBar-TextItem');
    const icon = bigmaacIcon.element({
      tag: 'span',
      className: 'jp-BigmaacStatus-icon'
    });
    this._text = document.createElement('span');
    this._text.className = 'jp-BigmaacStatus-text';
    button.append(icon, this._text);
    button.addEventListener('click', () => this._open());
    this.setTotals(null);
  }

  /** Show `value`; `null` before the first refresh. */
  setTotals(value: ITotals | null): void {
    const trans = this._trans;
    if (!value) {
      this._text.textContent = trans.__('BigMaac');
      this.node.title = trans.__('Open the BigMaac panel');
      this.node.setAttribute('aria-label', this.node.title);
      return;
    }
    const disk = formatBytes(value.diskBacked);
    const resident =
      value.resident === null ? '…' : formatBytes(value.resident);
    this._text.textContent = trans.__('%1 disk-backed · %2 in RAM', disk, resident);
    const summary = trans._n(
      '%1 kernel: %2 of disk-backed memory, %3 of it in RAM.',
      '%1 kernels: %2 of disk-backed memory, %3 of it in RAM.',
      value.kernels,
      disk,
      value.resident === null ? trans.__('not measured yet') : resident
    );
    this.node.title = `${summary}\n${trans.__('Click to open the BigMaac panel.')}`;
    this.node.setAttribute(
      'aria-label',
      `${summary} ${trans.__('Open the BigMaac panel')}`
    );
  }

  private _text: HTMLElement;
}
