/**
 * The `jupyterlab-bigmaac:statusbar` plugin: BigMaac's totals in the status
 * bar while kernels run; a click opens the panel.
 */

import {
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import { IStatusBar } from '@jupyterlab/statusbar';
import { ITranslator, nullTranslator } from '@jupyterlab/translation';
import { IDisposable } from '@lumino/disposable';
import { Signal } from '@lumino/signaling';

import { IBigmaac } from '../tokens';
import { totals } from './totals';
import { BigmaacStatus } from './widget';

/** The panel plugin's command (src/index.ts). */
const OPEN_PANEL = 'bigmaac:open-panel';

export const statusBarPlugin: JupyterFrontEndPlugin<void> = {
  id: 'jupyterlab-bigmaac:statusbar',
  description:
    'The disk-backed and resident memory of all kernels, in the status bar.',
  autoStart: true,
  requires: [IBigmaac, IStatusBar],
  optional: [ITranslator],
  activate: (
    app: JupyterFrontEnd,
    bigmaac: IBigmaac,
    statusBar: IStatusBar,
    translator: ITranslator | null
  ): void => {
    const trans = (translator ?? nullTranslator).load('jupyterlab');
    const model = bigmaac.model;
    const kernels = app.serviceManager.kernels;
    const item = new BigmaacStatus(
      () => void app.commands.execute(OPEN_PANEL),
      trans
    );
    const activeStateChanged = new Signal<any, void>(item);
    let subscription: IDisposable | null = null;
    let active = false;

    // Poll the agent only while some kernel runs, and only for the totals:
    // with the panel closed, one `processes/list` per refresh.
    const onRunningChanged = () => {
      const running = Array.from(kernels.running()).length > 0;
      if (running && !subscription) {
        subscription = model.subscribe({ totalsOnly: true });
      } else if (!running && subscription) {
        subscription.dispose();
        subscription = null;
      }
      onModelChanged();
    };
    const onModelChanged = () => {
      // The rows may lag the last kernel's shutdown by one refresh.
      const value =
        subscription && model.rows.length > 0 ? totals(model.rows) : null;
      item.setTotals(value);
      if (active !== (value !== null)) {
        active = value !== null;
        activeStateChanged.emit();
      }
    };
    kernels.runningChanged.connect(onRunningChanged);
    model.changed.connect(onModelChanged);
    onRunningChanged();

    statusBar.registerStatusItem(statusBarPlugin.id, {
      item,
      align: 'left',
      rank: 100,
      isActive: () => active,
      activeStateChanged
    });
  }
};
