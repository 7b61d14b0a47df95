/**
 * The `jupyterlab-bigmaac:notebook-toggle` plugin: BigMaac on or off per
 * notebook, from the notebook toolbar, the command palette (and its keyboard
 * shortcut) and the Property Inspector.
 */

import {
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import {
  Dialog,
  ICommandPalette,
  IToolbarWidgetRegistry,
  Notification,
  showDialog
} from '@jupyterlab/apputils';
import {
  INotebookTools,
  INotebookTracker,
  NotebookPanel
} from '@jupyterlab/notebook';
import { ISettingRegistry } from '@jupyterlab/settingregistry';
import { ITranslator, nullTranslator } from '@jupyterlab/translation';

import { readSettings, SETTINGS_PLUGIN_ID } from '../settings/settings';
import { IBigmaacNotebooks } from '../tokens';
import { NotebookToggleModel } from './model';
import { BigmaacNotebookTool, ToggleButton } from './widgets';

export namespace ToggleCommandIDs {
  export const toggleNotebook = 'bigmaac:toggle-notebook';
}

/** The toolbar item's name in schema/settings.json's `jupyter.lab.toolbars`. */
const TOOLBAR_ITEM = 'bigmaac-toggle';

/** The Property Inspector's section. */
const TOOLS_SECTION = 'bigmaac';

/** The notebook widget factory whose toolbar gets the button. */
const NOTEBOOK_FACTORY = 'Notebook';

export const togglePlugin: JupyterFrontEndPlugin<IBigmaacNotebooks> = {
  id: 'jupyterlab-bigmaac:notebook-toggle',
  description:
    'Turn BigMaac on or off for one notebook, saved in its metadata.',
  autoStart: true,
  provides: IBigmaacNotebooks,
  requires: [INotebookTracker],
  optional: [
    IToolbarWidgetRegistry,
    INotebookTools,
    ICommandPalette,
    ISettingRegistry,
    ITranslator
  ],
  activate: (
    app: JupyterFrontEnd,
    tracker: INotebookTracker,
    toolbarRegistry: IToolbarWidgetRegistry | null,
    notebookTools: INotebookTools | null,
    palette: ICommandPalette | null,
    settingRegistry: ISettingRegistry | null,
    translator: ITranslator | null
  ): IBigmaacNotebooks => {
    const trans = (translator ?? nullTranslator).load('jupyterlab');
    const serverSettings = app.serviceManager.serverSettings;
    let userDefault = true;
    const models = new Map<NotebookPanel, NotebookToggleModel>();

    const modelFor = (panel: NotebookPanel): NotebookToggleModel => {
      let model = models.get(panel);
      if (!model) {
        model = new NotebookToggleModel({
          panel,
          serverSettings,
          userDefault: () => userDefault
        });
        models.set(panel, model);
        panel.disposed.connect(() => models.delete(panel));
      }
      return model;
    };

    const toggle = async (model: NotebookToggleModel): Promise<void> => {
      const enabled = !model.state.on;
      try {
        await model.setEnabled(enabled);
      } catch (reason) {
        Notification.error(
          trans.__(
            'The server did not record the BigMaac toggle: %1. It applies once the notebook is saved.',
            (reason as Error).message
          ),
          { autoClose: 10_000 }
        );
      }
      app.commands.notifyCommandChanged(ToggleCommandIDs.toggleNotebook);
      if (!model.hasKernel) {
        return;
      }
      const result = await showDialog({
        title: enabled
          ? trans.__('Restart the Kernel to Turn BigMaac On?')
          : trans.__('Restart the Kernel to Turn BigMaac Off?'),
        body: trans.__(
          'BigMaac applies when a kernel starts. Restart the kernel of “%1” now? Its variables will be lost.',
          model.panel.title.label
        ),
        buttons: [
          Dialog.cancelButton({ label: trans.__('Later') }),
          Dialog.warnButton({ label: trans.__('Restart') })
        ]
      });
      if (result.button.accept && !model.isDisposed) {
        await model.panel.sessionContext.restartKernel();
      }
    };
    const onToggle = (model: NotebookToggleModel) => void toggle(model);

    app.commands.addCommand(ToggleCommandIDs.toggleNotebook, {
      label: trans.__('BigMaac for This Notebook'),
      caption: trans.__(
        'Turn disk-backed memory (BigMaac) on or off for this notebook’s kernel'
      ),
      isEnabled: () => tracker.currentWidget !== null,
      isToggled: () =>
        tracker.currentWidget !== null &&
        modelFor(tracker.currentWidget).state.on,
      execute: () => {
        const panel = tracker.currentWidget;
        if (panel) {
          return toggle(modelFor(panel));
        }
      }
    });
    palette?.addItem({
      command: ToggleCommandIDs.toggleNotebook,
      category: 'BigMaac'
    });
    tracker.currentChanged.connect(() =>
      app.commands.notifyCommandChanged(ToggleCommandIDs.toggleNotebook)
    );

    toolbarRegistry?.addFactory<NotebookPanel>(
      NOTEBOOK_FACTORY,
      TOOLBAR_ITEM,
      panel => new ToggleButton(modelFor(panel), onToggle, trans)
    );

    if (notebookTools) {
      notebookTools.addSection({
        sectionName: TOOLS_SECTION,
        label: trans.__('BigMaac'),
        rank: 3
      });
      notebookTools.addItem({
        section: TOOLS_SECTION,
        tool: new BigmaacNotebookTool(modelFor, onToggle, trans)
      });
    }

    if (settingRegistry) {
      void settingRegistry
        .load(SETTINGS_PLUGIN_ID)
        .then(settings => {
          const apply = () => {
            userDefault = readSettings(settings.composite).enabled;
            models.forEach(model => model.update());
          };
          apply();
          settings.changed.connect(apply);
        })
        .catch(reason =>
          console.error('BigMaac: could not load the settings.', reason)
        );
    }

    return {
      find: path => {
        const panel = tracker.find(p => p.context.localPath === path);
        return panel ? modelFor(panel) : null;
      }
    };
  }
};
