/**
 * Regenerates the README's screenshots of the panel, light and dark, in
 * docs/screenshots/: `make screenshots` (skipped in the ordinary test run).
 *
 * Two notebooks allocate disk-backed arrays; one is paged out and one is
 * expanded, so the shots show every part of a row, the container lines and
 * the chart's full legend.
 */
import { expect, test } from '@jupyterlab/galata';
import * as path from 'path';

import { openPanel, kernelRow } from './bigmaacHelpers';

const OUTPUT = path.resolve(__dirname, '..', '..', 'docs', 'screenshots');

test.skip(
  !process.env.BIGMAAC_SCREENSHOTS,
  'regenerates docs/screenshots; run with `make screenshots`'
);

test('the panel, light and dark', async ({ page }) => {
  test.setTimeout(300_000);
  await page.setViewportSize({ width: 1400, height: 1100 });
  const names: string[] = [];
  for (const [mib, pageout] of [
    [256, true],
    [96, false]
  ] as const) {
    const name = (await page.notebook.createNew())!;
    names.push(name);
    await page.notebook.setCell(
      0,
      'code',
      `import numpy as np\nframe = np.ones((${mib} * 2**20 // 8 // 1024, 1024))`
    );
    await page.notebook.runCell(0);
    if (pageout) {
      const panel = await openPanel(page);
      const row = kernelRow(panel, name);
      await expect(row.locator('.jp-BigmaacPanel-bytes')).toHaveText(
        `${mib}.0 MiB`,
        { timeout: 30_000 }
      );
      await row.getByRole('button', { name: /^Page out the/ }).click();
      await expect(row.locator('.jp-BigmaacPanel-pageoutStatus')).toHaveText(
        /^Paged out/,
        { timeout: 60_000 }
      );
    }
  }
  const panel = await openPanel(page);
  const expanded = kernelRow(panel, names[1]);
  await expanded.locator('.jp-BigmaacPanel-expand').click();
  await expect(expanded.locator('.jp-BigmaacPanel-variables')).toHaveText(
    /^Variables looked up at/,
    { timeout: 60_000 }
  );
  await expect(panel.locator('.jp-BigmaacPanel-summaryText')).toHaveText(
    /Swap disk: .+ free of/,
    { timeout: 30_000 }
  );
  // Let the chart gather a few samples.
  await page.waitForTimeout(8000);

  for (const [theme, file] of [
    ['JupyterLab Light', 'panel-light.png'],
    ['JupyterLab Dark', 'panel-dark.png']
  ]) {
    await page.theme.setTheme(theme);
    await page.waitForTimeout(2500);
    await panel.screenshot({ path: path.join(OUTPUT, file) });
  }
  await page.theme.setTheme('JupyterLab Light');
});
