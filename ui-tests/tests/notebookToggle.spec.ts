/**
 * The per-notebook toggle end to end: toolbar button, keyboard shortcut and
 * Property Inspector; the server's record of the restarted kernel, the
 * kernel's own environment and the panel row all follow it.
 */
import { expect, IJupyterLabPageFixture, test } from '@jupyterlab/galata';
import type { APIRequestContext } from '@playwright/test';
import * as fs from 'fs';

import {
  currentKernelId,
  kernelRow,
  openPanel,
  runCellOutput,
  serverKernel
} from './bigmaacHelpers';

/** Prints whether the kernel runs under the preload library. */
const PRELOADED =
  "import os; print('libbigmaac' in os.environ.get('LD_PRELOAD', ''))";

/** Wait until the kernel's launch `launch` is recorded with BigMaac `enabled`. */
async function expectLaunch(
  request: APIRequestContext,
  kernelId: string,
  launch: number,
  enabled: boolean
): Promise<void> {
  await expect
    .poll(
      async () => {
        const kernel = await serverKernel(request, kernelId);
        return kernel && kernel.bigmaac.launches >= launch
          ? kernel.bigmaac.enabled
          : 'not restarted yet';
      },
      { timeout: 60_000 }
    )
    .toBe(enabled);
}

/**
 * Whether the kernel's current process runs under the preload library, from
 * its environment in /proc (the test runs on the server's machine).
 */
async function preloaded(
  request: APIRequestContext,
  kernelId: string
): Promise<boolean> {
  const kernel = (await serverKernel(request, kernelId))!;
  const pid = kernel.bigmaac.pid;
  const environ = fs.readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0');
  const preload = environ.find(v => v.startsWith('LD_PRELOAD=')) ?? '';
  return preload.includes('libbigmaac');
}

async function acceptRestart(page: IJupyterLabPageFixture, title: string) {
  const dialog = page.locator('.jp-Dialog');
  await expect(dialog.locator('.jp-Dialog-header')).toHaveText(title);
  await dialog.getByRole('button', { name: 'Restart' }).click();
  await expect(dialog).toHaveCount(0);
}

/** The registry persists across server runs: forget what a test recorded. */
const registered: string[] = [];

async function notebookPath(page: IJupyterLabPageFixture): Promise<string> {
  const path: string = await page.evaluate(
    () => (window.jupyterapp.shell.currentWidget as any).context.localPath
  );
  registered.push(path);
  return path;
}

test.describe('BigMaac notebook toggle', () => {
  // Galata's kernels interception answers a restart with 201, which JupyterLab
  // refuses (see restart.spec.ts): without it the restarted kernel runs cells.
  test.use({ kernels: null });

  test.afterEach(async ({ request }) => {
    for (const path of registered.splice(0)) {
      await request.delete(`/bigmaac/notebooks?path=${encodeURIComponent(path)}`);
    }
  });

  test('switches off and on from the toolbar and the keyboard, applied at restart', async ({
    page,
    request
  }) => {
    test.setTimeout(150_000);
    const name = (await page.notebook.createNew())!;
    await page.notebook.setCell(0, 'code', PRELOADED);
    expect(await runCellOutput(page, 0)).toBe('True');
    const kernelId = await currentKernelId(page);
    await notebookPath(page);

    // The toolbar item, wherever it is (a narrow toolbar moves it to its "More commands" popup).
    const toggle = page.locator(
      '.jp-Toolbar-item[data-jp-item-name="bigmaac-toggle"] .jp-BigmaacToggle-button'
    );
    await expect(toggle).toHaveText('BigMaac: on');
    await expect(toggle).toHaveAttribute('aria-pressed', 'true');
    await expect(toggle).toHaveAttribute(
      'title',
      /The kernel runs with BigMaac on\./
    );

    // Off from the toolbar, with the offered restart.
    await toggle.click();
    await acceptRestart(page, 'Restart the Kernel to Turn BigMaac Off?');
    await expect(toggle).toHaveText('BigMaac: off');
    await expect(toggle).toHaveAttribute('aria-pressed', 'false');
    await expectLaunch(request, kernelId, 2, false);
    const off = (await serverKernel(request, kernelId))!;
    expect(off.bigmaac.reasonCode).toBe('disabled');
    expect(off.bigmaac.sources.enabled).toBe('notebook toggle');
    expect(
      await page.evaluate(() =>
        (window.jupyterapp.shell.currentWidget as any).model.getMetadata(
          'bigmaac'
        )
      )
    ).toEqual({ enabled: false });
    expect(await preloaded(request, kernelId)).toBe(false);
    expect(await runCellOutput(page, 0)).toBe('False');
    await expect(toggle).toHaveAttribute(
      'title',
      /The kernel runs with BigMaac off/
    );

    const panel = await openPanel(page);
    const state = kernelRow(panel, name).locator('.jp-BigmaacPanel-state');
    await expect(state).toHaveAttribute('data-state', 'off', {
      timeout: 20_000
    });

    // On again with the keyboard shortcut, from the notebook.
    expect(
      await page.evaluate(() =>
        window.jupyterapp.commands.keyBindings
          .filter(b => b.command === 'bigmaac:toggle-notebook')
          .map(b => `${b.keys.join(' ')} @ ${b.selector}`)
      )
    ).toEqual(['Ctrl Alt G @ .jp-NotebookPanel']);
    await page
      .locator('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-InputPrompt')
      .first()
      .click();
    await expect(page.locator('.jp-Notebook.jp-mod-commandMode')).toHaveCount(1);
    const cells = await page.notebook.getCellCount();
    await page.keyboard.press('Control+Alt+G');
    await acceptRestart(page, 'Restart the Kernel to Turn BigMaac On?');
    // The shortcut did only that: no cell was added or removed.
    expect(await page.notebook.getCellCount()).toBe(cells);
    await expect(toggle).toHaveText('BigMaac: on');
    await expectLaunch(request, kernelId, 3, true);
    expect(await preloaded(request, kernelId)).toBe(true);
    expect(await runCellOutput(page, 0)).toBe('True');
    await openPanel(page);
    await expect(state).toHaveAttribute('data-state', 'on', {
      timeout: 20_000
    });
    await expect(state).toHaveText('on');

    await page.notebook.close(true);
  });

  test('is in the Property Inspector and the command palette; "Later" keeps the kernel', async ({
    page,
    request
  }) => {
    test.setTimeout(180_000);
    await page.notebook.createNew();
    await page.notebook.setCell(0, 'code', PRELOADED);
    expect(await runCellOutput(page, 0)).toBe('True');
    const kernelId = await currentKernelId(page);
    const path = await notebookPath(page);

    await page.evaluate(async () => {
      await window.jupyterapp.commands.execute(
        'property-inspector:show-panel'
      );
    });
    // Open the inspector's BigMaac section (sections start collapsed).
    const header = page.locator('.jp-NotebookTools .jp-Collapse-header', {
      hasText: 'BigMaac'
    });
    await header.click();
    const tool = page.locator('.jp-BigmaacNotebookTool');
    await expect(tool).toBeVisible();
    const button = tool.locator('.jp-BigmaacToggle-button');
    await expect(button).toHaveAttribute('aria-pressed', 'true');
    await expect(tool.locator('.jp-BigmaacNotebookTool-detail')).toContainText(
      'The kernel runs with BigMaac on.'
    );

    await button.click();
    const dialog = page.locator('.jp-Dialog');
    await dialog.getByRole('button', { name: 'Later' }).click();
    await expect(button).toHaveAttribute('aria-pressed', 'false');
    await expect(tool.locator('.jp-BigmaacNotebookTool-detail')).toContainText(
      'Restart the kernel to apply the change.'
    );
    // Recorded for the next start, the running kernel untouched.
    const entry = await request.get(
      `/bigmaac/notebooks?path=${encodeURIComponent(path)}`
    );
    expect((await entry.json()).toggle).toEqual({ enabled: false });
    const kernel = (await serverKernel(request, kernelId))!;
    expect([kernel.bigmaac.launches, kernel.bigmaac.enabled]).toEqual([1, true]);

    // The palette's command switches it back.
    await page.keyboard.press('Control+Shift+C');
    await page.locator('.lm-CommandPalette-input').fill('BigMaac for This');
    await page
      .locator('.lm-CommandPalette-item', {
        hasText: 'BigMaac for This Notebook'
      })
      .click();
    await dialog.getByRole('button', { name: 'Later' }).click();
    await expect(button).toHaveAttribute('aria-pressed', 'true');
    const back = await request.get(
      `/bigmaac/notebooks?path=${encodeURIComponent(path)}`
    );
    expect((await back.json()).toggle).toEqual({ enabled: true });

    await page.notebook.close(true);
  });
});
