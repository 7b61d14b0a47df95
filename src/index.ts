/**
 * jupyterlab-bigmaac: the JupyterLab plugins.
 */

import {
  ILayoutRestorer,
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import { ICommandPalette, ISessionContext } from '@jupyterlab/apputils';
import { ISettingRegistry } from '@jupyterlab/settingregistry';
import { ITranslator, nullTranslator } from '@jupyterlab/translation';

import {
  AgentClient,
  BigmaacModel,
  BigmaacPanel,
  DEFAULT_REFRESH_INTERVAL,
  fetchKernelStates,
  modelServices
} from './panel';
import { settingsPlugin } from './settings';
import { statusBarPlugin } from './statusbar';
import { togglePlugin } from './toggle';
import { IBigmaac, IBigmaacNotebooks } from './tokens';

export { IBigmaac, IBigmaacNotebooks } from './tokens';

/** Command ids. */
export namespace CommandIDs {
  export const openPanel = 'bigmaac:open-panel';
}

const PANEL_PLUGIN_ID = 'jupyterlab-bigmaac:panel';

/** The panel's rank in the right side bar (after the property inspector and debugger). */
const PANEL_RANK = 800;

/**
 * The BigMaac side panel, its command, and the shared model.
 */
const panelPlugin: JupyterFrontEndPlugin<IBigmaac> = {
  id: PANEL_PLUGIN_ID,
  description:
    'A side panel of the running kernels and their disk-backed memory.',
  autoStart: true,
  provides: IBigmaac,
  optional: [
    ISettingRegistry,
    ICommandPalette,
    ILayoutRestorer,
    ITranslator,
    IBigmaacNotebooks
  ],
  activate: (
    app: JupyterFrontEnd,
    settingRegistry: ISettingRegistry | null,
    palette: ICommandPalette | null,
    restorer: ILayoutRestorer | null,
    translator: ITranslator | null,
    notebooks: IBigmaacNotebooks | null
  ): IBigmaac => {
    translator = translator ?? nullTranslator;
    const trans = translator.load('jupyterlab');
    const serverSettings = app.serviceManager.serverSettings;

    const agent = new AgentClient({ serverSettings });
    const model = new BigmaacModel({
      sessions: app.serviceManager.sessions,
      kernels: app.serviceManager.kernels,
      agent,
      fetchKernelStates: () => fetchKernelStates(serverSettings),
      ...modelServices(app.serviceManager),
      // The OOM fix goes through an open notebook's toggle, so its metadata
      // and toolbar agree with the kernel it restarts.
      openNotebook: path => notebooks?.find(path) ?? null,
      kernelStatus: kernelId => Private.kernelStatus(app, kernelId)
    });
    const panel = new BigmaacPanel({ model, translator });
    app.shell.add(panel, 'right', { rank: PANEL_RANK, type: 'BigMaac' });
    restorer?.add(panel, 'bigmaac-panel');

    app.commands.addCommand(CommandIDs.openPanel, {
      label: trans.__('Open the BigMaac Panel'),
      caption: trans.__('Show running kernels and their disk-backed memory'),
      icon: args => (args.isPalette ? undefined : panel.title.icon),
      execute: () => app.shell.activateById(panel.id)
    });
    palette?.addItem({ command: CommandIDs.openPanel, category: 'BigMaac' });

    if (settingRegistry) {
      void settingRegistry
        .load(PANEL_PLUGIN_ID)
        .then(settings => {
          const apply = () => {
            const interval = settings.get('refreshInterval').composite;
            model.refreshInterval =
              typeof interval === 'number'
                ? interval
                : DEFAULT_REFRESH_INTERVAL;
            model.sortBy =
              settings.get('sortBy').composite === 'diskBacked'
                ? 'diskBacked'
                : 'name';
            panel.showChart = settings.get('showChart').composite !== false;
          };
          apply();
          settings.changed.connect(apply);
        })
        .catch(reason => {
          console.error('BigMaac: could not load the panel settings.', reason);
        });
    }

    return { model, agent };
  }
};

namespace Private {
  /**
   * The live status of a kernel from the session of a widget in the main
   * area (notebook, console), `null` when none of them runs it.
   */
  export function kernelStatus(
    app: JupyterFrontEnd,
    kernelId: string
  ): string | null {
    for (const widget of app.shell.widgets('main')) {
      const context = (widget as { sessionContext?: ISessionContext })
        .sessionContext;
      const kernel = context?.session?.kernel;
      if (kernel?.id === kernelId) {
        return kernel.status;
      }
    }
    return null;
  }
}

export default [panelPlugin, settingsPlugin, togglePlugin, statusBarPlugin];
