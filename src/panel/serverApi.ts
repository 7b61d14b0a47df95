/**
 * The server extension's REST endpoints under `/bigmaac/` (docs/architecture.md §5).
 */

import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

/**
 * Whether BigMaac is on for one kernel, and why not when it is off, with the
 * additions `GET /bigmaac/kernels` makes (docs/server.md); those are optional
 * because an older server leaves them out.
 */
export interface IKernelBigmaacState {
  enabled: boolean;
  reason: string;
  reasonCode?: string;
  settings?: {
    enabled?: boolean;
    min_bigmaac_size?: string;
    swap_dir?: string;
  };
  /** Values this launch ignored (a bad user setting...), each as a sentence. */
  warnings?: string[];
  /** Where each setting came from: `admin`, `admin (locked)`, `user`... */
  sources?: Record<string, string>;
  notebookPath?: string | null;
  pid?: number | null;
  launches?: number;
  running?: boolean;
  /** `busy`, `idle`, `starting`...; `null` before the first sample. */
  executionState?: string | null;
  /** ISO 8601, when the kernel last went idle. */
  lastIdleAt?: string | null;
  oomKilled?: boolean | null;
  previousOomKilled?: boolean | null;
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

/**
 * The filesystem under the effective swap directory (`swap` in
 * `GET /bigmaac/status`); the numbers are `null` when the server could not
 * read the directory.
 */
export interface ISwapSpace {
  dir: string;
  /** Bytes the user may still write there. */
  free: number | null;
  total: number | null;
  fsType: string | null;
  /** Whether it keeps files in RAM (tmpfs). */
  onRam: boolean | null;
}

/**
 * The parts of `GET /bigmaac/status` the front end reads (docs/server.md);
 * all optional, since an older server leaves some out.
 */
export interface IServerStatus {
  /** The settings a new kernel without a notebook choice would get, by snake_case name. */
  settings?: Record<string, unknown>;
  /** Where each of `settings` came from: `admin`, `admin (locked)`, `user`... */
  sources?: Record<string, string>;
  /** Values that resolution ignored, each as a sentence. */
  warnings?: string[];
  /** What the user's settings file held; `problems`: what was ignored and why. */
  userSettings?: { problems?: string[] };
  swap?: unknown;
}

/**
 * Fetch `GET /bigmaac/status`.
 *
 * Throws a `ServerConnection.ResponseError` on an HTTP error.
 */
export async function fetchServerStatus(
  settings: ServerConnection.ISettings = ServerConnection.makeSettings()
): Promise<IServerStatus> {
  const url = URLExt.join(settings.baseUrl, 'bigmaac', 'status');
  const response = await ServerConnection.makeRequest(url, {}, settings);
  if (!response.ok) {
    throw await ServerConnection.ResponseError.create(response);
  }
  const body: any = await response.json();
  return body && typeof body === 'object' ? body : {};
}

/**
 * Fetch the swap directory's free space from `GET /bigmaac/status`; `null`
 * from a server that does not report it.
 *
 * Throws a `ServerConnection.ResponseError` on an HTTP error.
 */
export async function fetchSwapSpace(
  settings: ServerConnection.ISettings = ServerConnection.makeSettings()
): Promise<ISwapSpace | null> {
  const body = await fetchServerStatus(settings);
  return isSwapSpace(body.swap) ? body.swap : null;
}

function isSwapSpace(value: any): value is ISwapSpace {
  const count = (n: unknown) => n === null || typeof n === 'number';
  return (
    !!value &&
    typeof value.dir === 'string' &&
    count(value.free) &&
    count(value.total)
  );
}

/** A notebook's entry in the server's toggle registry (`/bigmaac/notebooks`). */
export interface INotebookToggle {
  enabled?: boolean | null;
  min_bigmaac_size?: string | null;
}

/**
 * Record a notebook's BigMaac choice in the server's toggle registry; it
 * applies at the kernel's next start or restart. The server validates it and
 * answers 400 with the reason otherwise (thrown as a `ResponseError`).
 */
export async function putNotebookToggle(
  path: string,
  toggle: INotebookToggle,
  settings: ServerConnection.ISettings = ServerConnection.makeSettings()
): Promise<void> {
  const url =
    URLExt.join(settings.baseUrl, 'bigmaac', 'notebooks') +
    URLExt.objectToQueryString({ path });
  const response = await ServerConnection.makeRequest(
    url,
    { method: 'PUT', body: JSON.stringify(toggle) },
    settings
  );
  if (!response.ok) {
    throw await ServerConnection.ResponseError.create(response);
  }
}
