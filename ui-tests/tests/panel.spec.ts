/**
 * The BigMaac panel end to end: a real kernel under the real preload library,
 * the real agent behind the server's websocket, in Debian's Chromium.
 */
import { expect, IJupyterLabPageFixture, test } from '@jupyterlab/galata';
import type { Locator } from '@playwright/test';

const ALLOCATE = 'import numpy as np; a = np.ones(64 * 2**20 // 8)';
const MIB = 2 ** 20;
const PANEL_ID = 'jp-bigmaac-panel';

const UNITS: Record<string, number> = {
  B: 1,
  KiB: 2 ** 10,
  MiB: 2 ** 20,
  GiB: 2 ** 30,
  TiB: 2 ** 40
};

/** Parse a size as the panel displays it ("64.0 MiB") into bytes; NaN if it is not one. */
function parseSize(text: string): number {
  const match = /([\d.]+)\s*(B|KiB|MiB|GiB|TiB)/.exec(text);
  return match ? parseFloat(match[1]) * UNITS[match[2]] : NaN;
}

async function openPanel(page: IJupyterLabPageFixture): Promise<Locator> {
  await page.sidebar.openTab(PANEL_ID);
  const panel = page.locator(`#${PANEL_ID}`);
  await expect(panel).toBeVisible();
  return panel;
}

function kernelRow(panel: Locator, name: string): Locator {
  return panel.locator('.jp-BigmaacPanel-row').filter({
    has: panel.page().locator('.jp-BigmaacPanel-name', { hasText: name })
  });
}

test.describe('BigMaac panel', () => {
  test('is in the right side bar and the command palette', async ({ page }) => {
    const tab = page.sidebar.getTabLocator(PANEL_ID);
    await expect(tab).toHaveAttribute('title', 'BigMaac');

    await page.keyboard.press('Control+Shift+C');
    await page.locator('.lm-CommandPalette-input').fill('BigMaac Panel');
    await page
      .locator('.lm-CommandPalette-item', { hasText: 'Open the BigMaac Panel' })
      .click();
    await expect(page.locator(`#${PANEL_ID}`)).toBeVisible();
    await expect(
      page.locator(`#${PANEL_ID} .jp-BigmaacPanel-title`)
    ).toHaveText('BigMaac');
  });

  test('has a refresh interval in the Settings Editor', async ({ page }) => {
    await page.evaluate(async () => {
      await window.jupyterapp.commands.execute('settingeditor:open', {
        query: 'BigMaac'
      });
    });
    const group = page
      .locator('.jp-SettingsPanel')
      .getByRole('group', { name: 'BigMaac panel', exact: true });
    await expect(
      group.getByRole('heading', { name: 'Refresh interval (ms)' })
    ).toBeVisible();
    await expect(group.getByRole('spinbutton')).toHaveValue('2000');
  });

  test('follows its display options from the settings', async ({ page }) => {
    const panel = await openPanel(page);
    const chart = panel.locator('svg.jp-BigmaacChart');
    await expect(chart).toBeVisible();
    const setShowChart = (value: boolean) =>
      page.evaluate(async value => {
        const registry: any = await window.galata.getPlugin(
          '@jupyterlab/apputils-extension:settings'
        );
        await registry.set('jupyterlab-bigmaac:panel', 'showChart', value);
      }, value);
    try {
      await setShowChart(false);
      await expect(chart).toBeHidden();
      await expect(panel.locator('.jp-BigmaacPanel-summaryText')).toBeVisible();
    } finally {
      await setShowChart(true);
    }
    await expect(chart).toBeVisible();
  });

  test('shows a notebook kernel’s disk-backed memory and pages it out', async ({
    page
  }) => {
    test.setTimeout(180_000);
    // Keep the name JupyterLab gives: the row shows the session's path.
    const notebook = await page.notebook.createNew();
    expect(notebook).toBeTruthy();
    const NOTEBOOK = notebook!;
    await page.notebook.setCell(0, 'code', 'import numpy as np');
    await page.notebook.runCell(0);

    const panel = await openPanel(page);
    const row = kernelRow(panel, NOTEBOOK);
    await expect(row).toHaveCount(1);
    await expect(row.locator('.jp-BigmaacPanel-kernelName')).toHaveText(
      'python3'
    );
    await expect(row.locator('.jp-BigmaacPanel-state')).toHaveText('on');

    // Nothing is disk-backed yet, so there is nothing to page out.
    const button = row.getByRole('button', {
      name: `Page out the disk-backed memory of ${NOTEBOOK}`
    });
    await expect(row.locator('.jp-BigmaacPanel-bytes')).toHaveText('0 B');
    await expect(button).toBeDisabled();

    await page.notebook.setCell(0, 'code', ALLOCATE);
    await page.notebook.runCell(0);

    // The row follows within the refresh interval (2 s by default).
    const bytes = row.locator('.jp-BigmaacPanel-bytes');
    await expect
      .poll(async () => parseSize(await bytes.innerText()), { timeout: 20_000 })
      .toBeGreaterThanOrEqual(64 * MIB);
    await expect(row.locator('.jp-BigmaacPanel-count')).toHaveText(
      /^[1-9]\d* allocations?$/
    );

    await expect(button).toBeEnabled();
    await button.click();

    const status = row.locator('.jp-BigmaacPanel-pageoutStatus');
    await expect(status).toHaveText(
      /^Paged out [\d.]+ (B|KiB|MiB|GiB) in [\d.]+ (ms|s)$/,
      { timeout: 60_000 }
    );
    // np.ones wrote every page, so the whole array was resident and is released.
    expect(parseSize(await status.innerText())).toBeGreaterThanOrEqual(
      64 * MIB
    );
    // The memory is still disk-backed (only its RAM was released).
    expect(parseSize(await bytes.innerText())).toBeGreaterThanOrEqual(64 * MIB);
    await expect(button).toBeEnabled();

    await page.notebook.close(false);
  });
});
