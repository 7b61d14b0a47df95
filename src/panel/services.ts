/**
 * What the panel's model needs of JupyterLab's services, beyond sessions and
 * kernels: kernelspec languages, a quiet question to a Python kernel, the
 * server's notebook toggle registry, the swap disk's free space, and kernel
 * restarts.
 */

import { KernelAPI, ServiceManager } from '@jupyterlab/services';

import type { BigmaacModel } from './model';
import { fetchSwapSpace, putNotebookToggle } from './serverApi';
import {
  parseVariablesReply,
  VARIABLES_EXPRESSION_KEY,
  variablesExpression
} from './variables';

/** How long the variable probe may take before the panel gives up, ms. */
const PROBE_TIMEOUT = 30_000;

/** The model options backed by a JupyterLab service manager. */
export function modelServices(
  manager: ServiceManager.IManager
): Pick<
  BigmaacModel.IOptions,
  | 'languageOf'
  | 'inspectVariables'
  | 'setNotebookToggle'
  | 'restartKernel'
  | 'fetchSwapSpace'
> {
  const settings = manager.serverSettings;
  return {
    languageOf: name =>
      manager.kernelspecs.specs?.kernelspecs[name]?.language ?? '',
    inspectVariables: async (kernelId, kernelName) => {
      // A connection of our own: no comms, closed at once, and the user's
      // sessions never see its messages.
      const kernel = manager.kernels.connectTo({
        model: { id: kernelId, name: kernelName },
        handleComms: false
      });
      try {
        const future = kernel.requestExecute(
          {
            code: '',
            silent: true,
            store_history: false,
            allow_stdin: false,
            stop_on_error: false,
            user_expressions: {
              [VARIABLES_EXPRESSION_KEY]: variablesExpression()
            }
          },
          true
        );
        let timer: ReturnType<typeof setTimeout> | undefined;
        const reply = await Promise.race([
          future.done,
          new Promise<never>((_, reject) => {
            timer = setTimeout(
              () => reject(new Error('the kernel did not answer in time')),
              PROBE_TIMEOUT
            );
          })
        ]).finally(() => clearTimeout(timer));
        const content: any = reply.content;
        if (content.status !== 'ok') {
          throw new Error(content.evalue || content.status);
        }
        return parseVariablesReply(
          content.user_expressions?.[VARIABLES_EXPRESSION_KEY]
        );
      } finally {
        kernel.dispose();
      }
    },
    setNotebookToggle: (path, toggle) =>
      putNotebookToggle(path, toggle, settings),
    restartKernel: id => KernelAPI.restartKernel(id, settings),
    fetchSwapSpace: () => fetchSwapSpace(settings)
  };
}
