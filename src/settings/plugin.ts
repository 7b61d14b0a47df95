/**
 * The `jupyterlab-bigmaac:settings` plugin: the user's BigMaac settings.
 *
 * The server reads the saved settings file for new kernels; this plugin
 * says which saved values the server ignores or an administrator's lock
 * overrides (and what new kernels get instead), and sends the automatic
 * page-out policy to the agent at load, on every change and on every
 * reconnection, so a change applies at once.
 */

import {
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import { Dialog, Notification, showDialog } from '@jupyterlab/apputils';
import { ISettingRegistry } from '@jupyterlab/settingregistry';
import {
  ITranslator,
  nullTranslator,
  TranslationBundle
} from '@jupyterlab/translation';
import { Widget } from '@lumino/widgets';

import { fetchServerStatus } from '../panel/serverApi';
import { IBigmaac } from '../tokens';
import {
  IPolicy,
  ISettingsStatus,
  policyFromSettings,
  readSettings,
  SETTINGS_PLUGIN_ID,
  settingsNotices
} from './settings';

/** The agent's method that replaces (part of) its policy. */
const POLICY_SET = 'policy/set';

/** How long `policy/set` may take before it counts as failed, in milliseconds. */
const POLICY_TIMEOUT = 15_000;

export const settingsPlugin: JupyterFrontEndPlugin<void> = {
  id: SETTINGS_PLUGIN_ID,
  description:
    'The user’s BigMaac settings: thresholds, swap directory, automatic page-out.',
  autoStart: true,
  requires: [ISettingRegistry],
  optional: [IBigmaac, ITranslator],
  activate: async (
    app: JupyterFrontEnd,
    registry: ISettingRegistry,
    bigmaac: IBigmaac | null,
    translator: ITranslator | null
  ): Promise<void> => {
    const trans = (translator ?? nullTranslator).load('jupyterlab');
    let settings: ISettingRegistry.ISettings;
    try {
      settings = await registry.load(SETTINGS_PLUGIN_ID);
    } catch (reason) {
      console.error('BigMaac: could not load the settings.', reason);
      return;
    }
    let current = readSettings(settings.composite);
    let problemId = '';
    let reportNumber = 0;

    // What the server makes of the saved settings: ignored values, locks.
    const reportProblems = async () => {
      const number = ++reportNumber;
      let status: ISettingsStatus | null = null;
      try {
        status = await fetchServerStatus(app.serviceManager.serverSettings);
      } catch (reason) {
        console.warn('BigMaac: could not read the server’s status.', reason);
      }
      if (number !== reportNumber) {
        return; // A later change has its own report.
      }
      const notices = settingsNotices(settings.user, status);
      if (problemId) {
        Notification.dismiss(problemId);
        problemId = '';
      }
      if (notices.length > 0) {
        const message = trans.__('BigMaac settings: %1', notices.join(' '));
        problemId = Notification.warning(
          // A toast shows 140 characters; the dialog shows every notice.
          message.length <= Private.TOAST_LENGTH
            ? message
            : trans._n(
                'BigMaac: %1 saved setting does not apply as written. See Details.',
                'BigMaac: %1 saved settings do not apply as written. See Details.',
                notices.length
              ),
          {
            autoClose: false,
            actions: [
              {
                label: trans.__('Details'),
                callback: () => void Private.showNotices(notices, trans)
              },
              {
                label: trans.__('Open Settings'),
                callback: () =>
                  void app.commands.execute('settingeditor:open', {
                    query: 'BigMaac'
                  })
              }
            ]
          }
        );
      }
    };

    const sendPolicy = () => {
      const agent = bigmaac?.agent;
      if (!agent || !Private.supportsPolicy(agent.serverInfo)) {
        return;
      }
      const policy: IPolicy = policyFromSettings(current);
      agent
        .request<IPolicy>(POLICY_SET, policy, { timeout: POLICY_TIMEOUT })
        .catch(reason => {
          Notification.error(
            trans.__(
              'BigMaac could not set the automatic page-out: %1',
              (reason as Error).message
            ),
            { autoClose: 10_000 }
          );
        });
    };

    // Toasts appear only once the notification plugin is up.
    void app.restored.then(() => reportProblems());
    settings.changed.connect(() => {
      const next = readSettings(settings.composite);
      void reportProblems();
      const policyChanged =
        JSON.stringify(policyFromSettings(next)) !==
        JSON.stringify(policyFromSettings(current));
      current = next;
      if (policyChanged) {
        sendPolicy();
      }
    });
    if (bigmaac) {
      // A restarted agent starts from the server's copy; ours may be newer.
      bigmaac.agent.statusChanged.connect((_, status) => {
        if (status === 'connected') {
          sendPolicy();
        }
      });
      if (bigmaac.agent.status === 'connected') {
        sendPolicy();
      }
    }
  }
};

namespace Private {
  /** The longest message a JupyterLab toast shows whole. */
  export const TOAST_LENGTH = 140;

  /** Every notice about the saved settings, in a dialog. */
  export async function showNotices(
    notices: string[],
    trans: TranslationBundle
  ): Promise<void> {
    const body = document.createElement('ul');
    body.className = 'jp-BigmaacSettingsNotices';
    for (const notice of notices) {
      const item = document.createElement('li');
      item.textContent = notice;
      body.append(item);
    }
    await showDialog({
      title: trans.__('BigMaac Settings Not Applied as Written'),
      body: new Widget({ node: body }),
      buttons: [Dialog.okButton({ label: trans.__('Close') })]
    });
  }

  /** Whether the agent's `initialize` result advertises `policy`. */
  export function supportsPolicy(info: unknown): boolean {
    const capabilities = (info as { capabilities?: Record<string, unknown> })
      ?.capabilities;
    return capabilities?.policy === true;
  }
}
