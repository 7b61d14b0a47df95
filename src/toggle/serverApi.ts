/**
 * The server's notebook toggle registry, `/bigmaac/notebooks` (docs/server.md):
 * a notebook's choice that takes effect at its kernel's next (re)start, even
 * before the notebook is saved.
 */

import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

/** One registry entry, with the server's key names. */
export interface INotebookToggle {
  enabled?: boolean;
  min_bigmaac_size?: string;
}

function toggleUrl(settings: ServerConnection.ISettings, path: string): string {
  return (
    URLExt.join(settings.baseUrl, 'bigmaac', 'notebooks') +
    URLExt.objectToQueryString({ path })
  );
}

async function send(
  settings: ServerConnection.ISettings,
  path: string,
  init: RequestInit
): Promise<INotebookToggle> {
  const response = await ServerConnection.makeRequest(
    toggleUrl(settings, path),
    init,
    settings
  );
  if (!response.ok) {
    throw await ServerConnection.ResponseError.create(response);
  }
  const body: any = await response.json();
  const toggle = body?.toggle;
  return toggle && typeof toggle === 'object' ? toggle : {};
}

/** The registry's entry for the notebook at API path `path` (`{}` when none). */
export function getNotebookToggle(
  path: string,
  settings: ServerConnection.ISettings = ServerConnection.makeSettings()
): Promise<INotebookToggle> {
  return send(settings, path, { method: 'GET' });
}

/**
 * Set `enabled` in the notebook's registry entry, keeping its other keys.
 *
 * `ServerConnection.makeRequest` adds the XSRF header for the login cookie.
 */
export async function setNotebookEnabled(
  path: string,
  enabled: boolean,
  settings: ServerConnection.ISettings = ServerConnection.makeSettings()
): Promise<INotebookToggle> {
  const current = await getNotebookToggle(path, settings);
  return send(settings, path, {
    method: 'PUT',
    body: JSON.stringify({ ...current, enabled })
  });
}

/**
 * Set `enabled` and, when given, `min_bigmaac_size` in the notebook's
 * registry entry, keeping its other keys.
 */
export async function setNotebookChoice(
  path: string,
  choice: INotebookToggle,
  settings: ServerConnection.ISettings = ServerConnection.makeSettings()
): Promise<INotebookToggle> {
  const current = await getNotebookToggle(path, settings);
  return send(settings, path, {
    method: 'PUT',
    body: JSON.stringify({ ...current, ...choice })
  });
}
