/**
 * The user's BigMaac settings: the Settings Editor, refused values, the
 * threshold reaching a new kernel, and page-out between cells that never
 * interrupts a Run All.
 */
import { expect, IJupyterLabPageFixture, test } from '@jupyterlab/galata';
import type { Locator } from '@playwright/test';

import {
  currentKernelId,
  putUserSettings,
  runCellOutput,
  serverKernel,
  SETTINGS_PLUGIN
} from './bigmaacHelpers';

const THRESHOLD = 'import os; print(os.environ.get("BIGMAAC_MIN_BIGMAAC_SIZE"))';

/**
 * The warning about the saved settings: the toast's summary, then every
 * notice in the dialog its Details button opens.
 */
async function settingsNotices(page: IJupyterLabPageFixture): Promise<Locator> {
  const summary = page.getByText(
    /^BigMaac: \d+ saved settings? do(es)? not apply as written\. See Details\.$/
  );
  await expect(summary.first()).toBeVisible({ timeout: 20_000 });
  await page.getByRole('button', { name: 'Details' }).first().click();
  const dialog = page.locator('.jp-Dialog');
  await expect(dialog).toContainText('BigMaac Settings Not Applied as Written');
  return dialog.locator('.jp-BigmaacSettingsNotices li');
}

test.describe('BigMaac settings', () => {
  // The browser must see the server's settings file, not Galata's in-memory copy.
  test.use({ mockSettings: false });

  test.afterEach(async ({ request }) => {
    await putUserSettings(request, {});
  });

  test('lists every setting in the Settings Editor', async ({ page }) => {
    await page.evaluate(async () => {
      await window.jupyterapp.commands.execute('settingeditor:open', {
        query: 'BigMaac kernels'
      });
    });
    const group = page
      .locator('.jp-SettingsPanel')
      .getByRole('group', { name: 'BigMaac kernels' });
    await expect(
      group.getByRole('checkbox', { name: 'Enable BigMaac for new kernels' })
    ).toBeChecked();
    for (const title of [
      'Disk-backed threshold',
      'Small-allocation (fries) threshold',
      'Swap directory',
      'When the disk is full',
      'Automatic page-out',
      'Idle seconds before page-out',
      'Memory pressure threshold (%)'
    ]) {
      await expect(group.getByRole('heading', { name: title })).toBeVisible();
    }
  });

  test('says what a size looks like when the editor refuses one', async ({
    page
  }) => {
    await page.evaluate(async () => {
      await window.jupyterapp.commands.execute('settingeditor:open', {
        query: 'BigMaac kernels'
      });
    });
    const group = page
      .locator('.jp-SettingsPanel')
      .getByRole('group', { name: 'BigMaac kernels' });
    const content = group.locator('.jp-FormGroup-content').filter({
      has: page.getByRole('heading', {
        name: 'Disk-backed threshold',
        exact: true
      })
    });
    await content.getByRole('textbox').fill('lots');
    // JupyterLab's form shows the schema's own words (it offers no way to
    // replace them); the description under the field says what it wants.
    await expect(content.locator('.validationErrors')).toContainText(
      'must match pattern'
    );
    await expect(content.locator('.jp-FormGroup-description')).toHaveText(
      /Format: a whole number of bytes, or a whole number followed by K, M, G or T \(powers of 1024\), for example 32M; at least 4K\. Anything else \(1\.5G, 32 MB\) is refused, and the editor then says the value "must match pattern"\./
    );
  });

  test('refuses an invalid value with a reason', async ({ request }) => {
    for (const [values, reason] of [
      [{ minBigmaacSize: 'lots' }, /minBigmaacSize.*pattern|pattern.*minBigmaacSize/s],
      [{ autoPageoutIdleSeconds: 0 }, /autoPageoutIdleSeconds|>= 1/],
      [{ onDiskFull: 'crash' }, /allowed values|onDiskFull/],
      [{ swapDir: 'relative' }, /pattern|swapDir/]
    ] as const) {
      const response = await request.put(
        `/lab/api/settings/${SETTINGS_PLUGIN}`,
        { data: { raw: JSON.stringify(values) } }
      );
      expect(response.status()).toBe(400);
      expect(await response.text()).toMatch(reason);
    }
  });

  test('warns when the fries threshold is not below the disk-backed one', async ({
    page,
    request
  }) => {
    await putUserSettings(request, {
      minBigmaacSize: '32M',
      minFrySize: '64M'
    });
    await page.goto();
    // The server ignores the value and keeps BigMaac on: the warning says so.
    const notices = await settingsNotices(page);
    await expect(notices).toHaveText(
      'Small-allocation (fries) threshold: "64M" must be below the disk-backed threshold "32M" (or 0 to turn the fries tier off). It is ignored: new kernels use "0" (admin) instead, with BigMaac on.'
    );
    await expect(page.getByText(/without BigMaac/)).toHaveCount(0);
  });

  test('names the locked swap directory and the one new kernels use', async ({
    page,
    request
  }) => {
    const status = await (await request.get('/bigmaac/status')).json();
    expect(status.sources.swap_dir).toBe('admin (locked)');
    await putUserSettings(request, { swapDir: '/var/tmp/my-own-swap' });
    await page.goto();
    await expect(await settingsNotices(page)).toHaveText(
      `Swap directory is locked by your administrator: new kernels use "${status.settings.swap_dir}", not "/var/tmp/my-own-swap".`
    );
  });

  test('a new kernel uses the threshold set in the Settings Editor', async ({
    page,
    request
  }) => {
    test.setTimeout(180_000);
    await page.evaluate(async () => {
      await window.jupyterapp.commands.execute('settingeditor:open', {
        query: 'BigMaac kernels'
      });
    });
    const group = page
      .locator('.jp-SettingsPanel')
      .getByRole('group', { name: 'BigMaac kernels' });
    // The first text field is the disk-backed threshold (schema order).
    const field = group.getByRole('textbox').first();
    await expect(field).toHaveValue('32M');
    await field.fill('48M');
    // The editor saves on its own; wait until the file says so.
    await expect
      .poll(async () => {
        const response = await request.get(
          `/lab/api/settings/${SETTINGS_PLUGIN}`
        );
        return (await response.json()).raw;
      }, { timeout: 20_000 })
      .toContain('48M');

    await page.notebook.createNew();
    await page.notebook.setCell(0, 'code', THRESHOLD);
    expect(await runCellOutput(page, 0)).toBe('48M');
    const kernel = (await serverKernel(request, await currentKernelId(page)))!;
    expect(kernel.bigmaac.enabled).toBe(true);
    expect(kernel.bigmaac.settings.min_bigmaac_size).toBe('48M');
    await page.notebook.close(true);
  });

  test('page-out after 1 s idle never interrupts a Run All', async ({
    page,
    request
  }) => {
    test.setTimeout(240_000);
    await putUserSettings(request, {
      autoPageout: 'idle',
      autoPageoutIdleSeconds: 1
    });
    // Every page-out the agent finishes is announced to every connection.
    const pageouts: {
      kernelId?: string;
      reason: string;
      ok: boolean;
      at: number;
    }[] = [];
    page.on('websocket', socket => {
      if (!socket.url().includes('/bigmaac/agent')) {
        return;
      }
      socket.on('framereceived', frame => {
        const message = JSON.parse(String(frame.payload));
        if (message.method === 'pageout/finished') {
          pageouts.push(message.params);
        }
      });
    });
    // A fresh load sends the policy to the agent.
    await page.goto();

    await page.notebook.createNew();
    // The first and last cells print the kernel's clock (ms) at the run's
    // start and end, the clock the agent stamps its page-outs with.
    const cells = [
      'import numpy as np, time\nprint(int(time.time() * 1000))\na = np.ones(64 * 2**20 // 8)',
      'time.sleep(1.5)\na += 1',
      'time.sleep(1.5)\na *= 3',
      'time.sleep(1.5)\nb = a.copy()',
      'time.sleep(1.5)\nprint(int(a.sum()), int(b.sum()), a[0], b[-1])\nprint(int(time.time() * 1000))'
    ];
    await page.notebook.setCell(0, 'code', cells[0]);
    for (let i = 1; i < cells.length; i++) {
      await page.notebook.addCell('code', cells[i]);
    }
    const expected = `${8 * 2 ** 20 * 6} ${8 * 2 ** 20 * 6} 6.0 6.0`;
    expect(await page.notebook.run()).toBe(true);
    const kernelId = await currentKernelId(page);
    const last = cells.length - 1;
    const lastLines = ((await page.notebook.getCellTextOutput(last)) ?? [])
      .join('')
      .trim()
      .split('\n');
    expect(lastLines[0]).toBe(expected);
    const runStart = Number(
      ((await page.notebook.getCellTextOutput(0)) ?? []).join('').trim()
    );
    const runEnd = Number(lastLines[1]);
    expect(runEnd - runStart).toBeGreaterThan(4 * 1500);
    for (let i = 0; i < cells.length; i++) {
      // Every cell ran once, in order, without an error.
      await expect(
        page.locator('.jp-Cell .jp-InputPrompt').nth(i)
      ).toHaveText(`[${i + 1}]:`);
    }
    await expect(page.locator('.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]')).toHaveCount(0);

    // Once idle for a second, the kernel is paged out, for being idle.
    const mine = () => pageouts.filter(p => p.kernelId === kernelId);
    await expect
      .poll(() => mine().filter(p => p.reason === 'idle' && p.ok).length, {
        timeout: 60_000,
        message: 'an idle page-out after the run'
      })
      .toBeGreaterThan(0);
    // None during the run: the kernel was never idle for a second in it.
    const during = mine().filter(p => p.at > runStart && p.at <= runEnd);
    expect(during).toEqual([]);
    const idle = mine().find(p => p.reason === 'idle' && p.ok)!;
    expect(idle.at).toBeGreaterThan(runEnd);

    // The data reads back intact from disk.
    await page.notebook.addCell('code', 'print(int(a.sum()), int(b.sum()), a[0], b[-1])');
    expect(await runCellOutput(page, cells.length)).toBe(expected);
    await page.notebook.close(true);
  });
});
