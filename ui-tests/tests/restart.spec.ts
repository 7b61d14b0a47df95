/**
 * A notebook keeps working after its kernel restarts: the browser's kernel
 * connection comes back and the next cell runs.
 *
 * Galata (5.6.4) by default routes every POST under /api/kernels through a
 * tracking mock that answers with 201, including POST .../restart, for which
 * jupyter_server sends 200 and JupyterLab requires 200. The restart then
 * throws in the page before the kernel connection reconnects, and it stays
 * "Starting". The server is fine (it answers 200), so these tests only turn
 * the kernels mock off; the sessions mock still tracks and removes the
 * notebook's session and kernel after each test.
 */
import { expect, IJupyterLabPageFixture, test } from '@jupyterlab/galata';

import { runCellOutput } from './bigmaacHelpers';

test.use({ kernels: null });

async function notebookWithOneRun(page: IJupyterLabPageFixture): Promise<void> {
  await page.notebook.createNew();
  await page.notebook.setCell(0, 'code', '1+1');
  expect(await runCellOutput(page, 0)).toBe('2');
}

async function runsAfterRestart(page: IJupyterLabPageFixture): Promise<void> {
  await page.notebook.setCell(0, 'code', '2+2');
  expect(await runCellOutput(page, 0)).toBe('4');
}

test.describe('Kernel restart', () => {
  test.setTimeout(180_000);

  test('a cell runs after a restart from the Kernel menu', async ({ page }) => {
    await notebookWithOneRun(page);

    await page.menu.clickMenuItem('Kernel>Restart Kernel…');
    const dialog = page.locator('.jp-Dialog');
    await dialog.locator('.jp-mod-accept').click();
    await expect(dialog).toHaveCount(0);

    await runsAfterRestart(page);
  });

  test('a cell runs after sessionContext.restartKernel()', async ({ page }) => {
    await notebookWithOneRun(page);

    await page.evaluate(async () => {
      const panel = window.jupyterapp.shell.currentWidget as any;
      await panel.sessionContext.restartKernel();
    });

    await runsAfterRestart(page);
  });
});
