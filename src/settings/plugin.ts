/**
 * The `jupyterlab-bigmaac:settings` plugin: the user's BigMaac settings.
 *
 * The server reads the saved settings file for new kernels; this plugin
 * checks what the schema cannot, and sends the automatic page-out policy to
 * the agent at load, on every change and on every reconnection, so a change
 * applies at once.
 */

import {
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import { Notification } from '@jupyterlab/apputils';
import { ISettingRegistry } from '@jupyterlab/settingregistry';
import { ITranslator, nullTranslator } from '@jupyterlab/translation';

import { IBigmaac } from '../tokens';
import {
  IBigmaacSettings,
  IPolicy,
  policyFromSettings,
  readSettings,
  SETTINGS_PLUGIN_ID,
  validateSettings
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

    const reportProblems = (values: IBigmaacSettings) => {
      if (problemId) {
        Notification.dismiss(problemId);
        problemId = '';
      }
      const problems = validateSettings(values);
      if (problems.length > 0) {
        const details = problems
          .map(p => `${p.setting}: ${p.message}`)
          .join('; ');
        problemId = Notification.warning(
          trans.__(
            'BigMaac settings: %1. New kernels start without BigMaac until this is fixed.',
            details
          ),
          {
            autoClose: false,
            actions: [
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
    void app.restored.then(() => reportProblems(current));
    settings.changed.connect(() => {
      const next = readSettings(settings.composite);
      reportProblems(next);
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
  /** Whether the agent's `initialize` result advertises `policy`. */
  export function supportsPolicy(info: unknown): boolean {
    const capabilities = (info as { capabilities?: Record<string, unknown> })
      ?.capabilities;
    return capabilities?.policy === true;
  }
}
