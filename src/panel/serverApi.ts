/**
 * The server extension's REST endpoints under `/bigmaac/` (docs/architecture.md §5).
 */

import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

/** Whether BigMaac is on for one kernel, and why not when it is off. */
export interface IKernelBigmaacState {
  enabled: boolean;
  reason: string;
}

/** One entry of `GET /bigmaac/kernels`. */
export interface IKernelState {
  id: string;
  name: string;
  bigmaac: IKernelBigmaacState;
}

/**
 * Fetch BigMaac's state for every kernel the server runs.
 *
 * Throws a `ServerConnection.ResponseError` on an HTTP error, and an `Error`
 * when the answer is not shaped as documented.
 */
export async function fetchKernelStates(
  settings: ServerConnection.ISettings = ServerConnection.makeSettings()
): Promise<IKernelState[]> {
  const url = URLExt.join(settings.baseUrl, 'bigmaac', 'kernels');
  const response = await ServerConnection.makeRequest(url, {}, settings);
  if (!response.ok) {
    throw await ServerConnection.ResponseError.create(response);
  }
  const body: any = await response.json();
  if (!body || !Array.isArray(body.kernels)) {
    throw new Error('GET /bigmaac/kernels: the answer has no "kernels" list');
  }
  return body.kernels.filter(isKernelState);
}

function isKernelState(value: any): value is IKernelState {
  return (
    !!value &&
    typeof value.id === 'string' &&
    !!value.bigmaac &&
    typeof value.bigmaac.enabled === 'boolean'
  );
}
