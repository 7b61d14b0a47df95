/**
 * BigMaac's status bar item: totals over the running kernels, a click that
 * opens the panel, hidden when no kernel runs, and cheap while the panel is
 * closed.
 */
import { expect, test } from '@jupyterlab/galata';

import { PANEL_ID, runCellOutput } from './bigmaacHelpers';

const ALLOCATE =
  'import numpy as np; a = np.ones(64 * 2**20 // 8); print(a.nbytes)';

test.describe('BigMaac status bar item', () => {
  test('shows the kernels’ disk-backed memory and opens the panel', async ({
    page,
    request
  }) => {
    test.setTimeout(180_000);
    const item = page.locator('#jp-main-statusbar .jp-BigmaacStatus');

    await page.notebook.createNew();
    await page.notebook.setCell(0, 'code', ALLOCATE);
    expect(await runCellOutput(page, 0)).toBe(String(64 * 2 ** 20));

    await expect(item).toBeVisible({ timeout: 20_000 });
    await expect(item).toHaveText(
      /^64\.0 MiB disk-backed · ([\d.]+ (B|KiB|MiB)|…) in RAM$/,
      { timeout: 20_000 }
    );
    await expect(item).toHaveAttribute(
      'aria-label',
      /^1 kernel: 64\.0 MiB of disk-backed memory, .* Open the BigMaac panel$/
    );

    // Keyboard first: focus and Enter open the panel like a click.
    await item.focus();
    await page.keyboard.press('Enter');
    await expect(page.locator(`#${PANEL_ID}`)).toBeVisible();
    await page.sidebar.close('right');
    await expect(page.locator(`#${PANEL_ID}`)).toBeHidden();
    await item.click();
    await expect(page.locator(`#${PANEL_ID}`)).toBeVisible();

    // No kernel left: the item goes away.
    await page.notebook.close(true);
    const kernels = await (await request.get('/api/kernels')).json();
    for (const kernel of kernels) {
      expect((await request.delete(`/api/kernels/${kernel.id}`)).status()).toBe(
        204
      );
    }
    await expect(item).toBeHidden({ timeout: 30_000 });
  });

  test('with the panel closed, refreshes from the agent’s process list alone', async ({
    page
  }) => {
    test.setTimeout(180_000);
    const item = page.locator('#jp-main-statusbar .jp-BigmaacStatus');
    // What the page asks: server paths, and agent methods on the websocket.
    const requests: string[] = [];
    page.on('request', request => {
      const path = new URL(request.url()).pathname;
      if (path.startsWith('/bigmaac/') || path.startsWith('/api/sessions')) {
        requests.push(path);
      }
    });
    const methods: string[] = [];
    page.on('websocket', socket => {
      if (socket.url().includes('/bigmaac/agent')) {
        socket.on('framesent', frame => {
          const method = /"method"\s*:\s*"([^"]+)"/.exec(String(frame.payload));
          if (method) {
            methods.push(method[1]);
          }
        });
      }
    });
    await page.goto();

    await page.notebook.createNew();
    await page.notebook.setCell(0, 'code', ALLOCATE);
    expect(await runCellOutput(page, 0)).toBe(String(64 * 2 ** 20));
    await expect(item).toHaveText(/^64\.0 MiB disk-backed/, { timeout: 20_000 });
    await expect(page.locator(`#${PANEL_ID}`)).toBeHidden();

    // Three refresh intervals (2 s) with the panel closed.
    requests.length = 0;
    methods.length = 0;
    await page.waitForTimeout(3 * 2000 + 1000);
    expect(requests.filter(p => p.startsWith('/bigmaac/'))).toEqual([]);
    expect(methods).toContain('processes/list');
    // process/get only if the kernel's stats changed; nothing else.
    expect(
      methods.filter(m => m !== 'processes/list' && m !== 'process/get')
    ).toEqual([]);

    // Opening the panel brings the full refresh back.
    await item.click();
    await expect(page.locator(`#${PANEL_ID}`)).toBeVisible();
    await expect
      .poll(() => requests.includes('/bigmaac/kernels'), { timeout: 20_000 })
      .toBe(true);
    await page.notebook.close(true);
  });
});
