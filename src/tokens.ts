/**
 * Tokens other plugins use to reach BigMaac's front-end services.
 */

import { Token } from '@lumino/coreutils';

import type { AgentClient, BigmaacModel } from './panel';
import type { NotebookToggleModel } from './toggle/model';

/** The BigMaac model and agent client shared by every BigMaac view. */
export interface IBigmaac {
  /** Running kernels joined with the agent's process stats. */
  readonly model: BigmaacModel;
  /** The JSON-RPC client of the agent, for views that need more methods. */
  readonly agent: AgentClient;
}

export const IBigmaac = new Token<IBigmaac>(
  'jupyterlab-bigmaac:IBigmaac',
  'BigMaac: the model of running kernels and the agent client.'
);

/** The BigMaac toggles of open notebooks. */
export interface IBigmaacNotebooks {
  /** The toggle of the open notebook at API path `path`, `null` when none is open. */
  find(path: string): NotebookToggleModel | null;
}

export const IBigmaacNotebooks = new Token<IBigmaacNotebooks>(
  'jupyterlab-bigmaac:IBigmaacNotebooks',
  'BigMaac: the per-notebook toggles of open notebooks.'
);
