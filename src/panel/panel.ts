/**
 * The BigMaac side panel: the widget in the right side bar that hosts the
 * panel's content (`views.ts`) and refreshes the model fully only while it is
 * visible.
 */

import { ITranslator, nullTranslator } from '@jupyterlab/translation';
import { IDisposable } from '@lumino/disposable';
import { Message } from '@lumino/messaging';
import { Widget } from '@lumino/widgets';

import { bigmaacIcon } from './icons';
import { BigmaacModel } from './model';
import { PanelView } from './views';

/** The panel's widget id, also used by the shell to restore its layout. */
export const PANEL_ID = 'jp-bigmaac-panel';

/**
 * A side panel showing BigMaac's view of the running kernels.
 */
export class BigmaacPanel extends Widget {
  constructor(options: BigmaacPanel.IOptions) {
    super();
    this.model = options.model;
    const trans = (options.translator ?? nullTranslator).load('jupyterlab');
    this.id = PANEL_ID;
    this.addClass('jp-BigmaacPanel');
    this.title.icon = bigmaacIcon;
    this.title.caption = trans.__('BigMaac');
    this._view = new PanelView(this.model, trans);
    this.node.append(...this._view.nodes);
    this.model.changed.connect(this._view.render, this._view);
    this._view.render();
  }

  readonly model: BigmaacModel;

  /** Whether the chart of all kernels is shown. */
  get showChart(): boolean {
    return this._view.showChart;
  }
  set showChart(value: boolean) {
    this._view.showChart = value;
  }

  dispose(): void {
    if (this.isDisposed) {
      return;
    }
    this.model.changed.disconnect(this._view.render, this._view);
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

  private _view: PanelView;
  private _subscription: IDisposable | null = null;
}

export namespace BigmaacPanel {
  export interface IOptions {
    model: BigmaacModel;
    translator?: ITranslator;
  }
}
