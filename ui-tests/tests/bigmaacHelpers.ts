/**
 * Shared steps of the BigMaac settings, toggle and status bar browser tests.
 */
import { expect, IJupyterLabPageFixture } from '@jupyterlab/galata';
import type { APIRequestContext, Locator } from '@playwright/test';

export const SETTINGS_PLUGIN = 'jupyterlab-bigmaac:settings';
export const PANEL_ID = 'jp-bigmaac-panel';

/** What `GET /bigmaac/kernels` says of one kernel. */
export interface IServerKernel {
  id: string;
  bigmaac: {
    enabled: boolean;
    reason: string;
    reasonCode: string;
    launches: number;
    pid: number | null;
    running: boolean;
    settings: Record<string, unknown>;
    sources: Record<string, string>;
  };
}

/** The server's record of a kernel, or undefined. */
export async function serverKernel(
  request: APIRequestContext,
  kernelId: string
): Promise<IServerKernel | undefined> {
  const response = await request.get('/bigmaac/kernels');
  expect(response.ok()).toBe(true);
  const body = await response.json();
  return body.kernels.find((k: IServerKernel) => k.id === kernelId);
}

/** The kernel id of the current notebook. */
export async function currentKernelId(
  page: IJupyterLabPageFixture
): Promise<string> {
  const id = await page.evaluate(
    () =>
      (window.jupyterapp.shell.currentWidget as any)?.sessionContext?.session
        ?.kernel?.id ?? ''
  );
  expect(id).not.toBe('');
  return id;
}

/** Replace the user's BigMaac settings file through JupyterLab's settings API. */
export async function putUserSettings(
  request: APIRequestContext,
  values: Record<string, unknown>
): Promise<void> {
  const response = await request.put(`/lab/api/settings/${SETTINGS_PLUGIN}`, {
    data: { raw: JSON.stringify(values) }
  });
  expect(response.status(), await response.text()).toBe(204);
}

/** Run cell `index` and return its text output, trimmed. */
export async function runCellOutput(
  page: IJupyterLabPageFixture,
  index: number
): Promise<string> {
  await page.notebook.runCell(index);
  const output = await page.notebook.getCellTextOutput(index);
  return (output ?? []).join('').trim();
}

/** The BigMaac panel, opened in the right side bar. */
export async function openPanel(page: IJupyterLabPageFixture): Promise<Locator> {
  await page.sidebar.openTab(PANEL_ID);
  const panel = page.locator(`#${PANEL_ID}`);
  await expect(panel).toBeVisible();
  return panel;
}

/** The panel's row of the notebook `name`. */
export function kernelRow(panel: Locator, name: string): Locator {
  return panel.locator('.jp-BigmaacPanel-row').filter({
    has: panel.page().locator('.jp-BigmaacPanel-name', { hasText: name })
  });
}
