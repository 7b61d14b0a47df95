/**
 * The BigMaac panel's details end to end, in Debian's Chromium against real
 * ipykernel kernels under the real library and the real agent: the row
 * follows an allocation, residency falls after "Page out", the per-variable
 * view names the ndarray, "Page out idle kernels" leaves a busy kernel alone,
 * and a real OOM kill (in a small memory cgroup of the
 * test's own) raises the banner, whose fix records a lower threshold in the
 * notebook and restarts its kernel with it.
 */
import { expect, IJupyterLabPageFixture, test } from '@jupyterlab/galata';
import type { Locator } from '@playwright/test';
import * as fs from 'fs';
import * as path from 'path';

const MIB = 2 ** 20;
const PANEL_ID = 'jp-bigmaac-panel';
/** The panel's default refresh interval (schema/panel.json), ms. */
const REFRESH_INTERVAL = 2000;
/** Room for a loaded two-core machine on top of one refresh interval. */
const SETTLE = 20 * REFRESH_INTERVAL;

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

/** The names in the kernel's namespace that do not start with `_`. */
const LIST_NAMES =
  'print(sorted(k for k in globals() if not k.startswith("_")))';

/**
 * Append a code cell at the end of the notebook and run it; resolves with its
 * index. (Running a cell may leave an empty cell after it, so indices of
 * cells added later are not known in advance.)
 */
async function appendAndRun(
  page: IJupyterLabPageFixture,
  code: string,
  wait = true
): Promise<number> {
  const count = await page.notebook.getCellCount();
  const last = count - 1;
  const lastEmpty = (await page.notebook.getCellTextInput(last)) === '';
  const index = lastEmpty ? last : count;
  if (lastEmpty) {
    await page.notebook.setCell(index, 'code', code);
  } else {
    await page.notebook.addCell('code', code);
  }
  const run = page.notebook.runCell(index);
  if (wait) {
    await run;
  } else {
    // The caller does not wait (the cell kills its kernel, say).
    run.catch(() => undefined);
  }
  return index;
}

/** The text of a cell's output. */
async function output(
  page: IJupyterLabPageFixture,
  cell: number
): Promise<string> {
  return (await page.notebook.getCellTextOutput(cell))?.join('') ?? '';
}

test.describe('BigMaac panel details', () => {
  // Galata's kernels mock answers a restart with 201, which JupyterLab
  // refuses (restart.spec.ts): the OOM fix restarts and then runs a cell.
  test.use({ kernels: null });

  test('follows an allocation, names its variable, and shows residency fall after a page-out', async ({
    page
  }) => {
    test.setTimeout(240_000);
    const notebook = (await page.notebook.createNew())!;
    await page.notebook.setCell(0, 'code', 'import numpy as np');
    await page.notebook.runCell(0);
    const panel = await openPanel(page);
    const row = kernelRow(panel, notebook);
    await expect(row.locator('.jp-BigmaacPanel-state')).toHaveText('on', {
      timeout: SETTLE
    });
    await expect(row.locator('.jp-BigmaacPanel-language')).toHaveText('python');

    // 64 MiB, every page written: disk-backed and all of it resident.
    await appendAndRun(page, 'frame = np.ones((1024, 8192))');
    const bytes = row.locator('.jp-BigmaacPanel-bytes');
    await expect
      .poll(async () => parseSize(await bytes.innerText()), {
        timeout: SETTLE
      })
      .toBeGreaterThanOrEqual(64 * MIB);
    const residency = row.locator('.jp-BigmaacPanel-residency');
    const resident = async () =>
      Number(await residency.getAttribute('data-resident'));
    await expect
      .poll(resident, { timeout: SETTLE })
      .toBeGreaterThanOrEqual(64 * MIB);
    await expect(row.locator('.jp-BigmaacPanel-bar')).toHaveAttribute(
      'aria-label',
      /^64\.\d MiB of 64\.\d MiB in RAM, .+ dirty; the rest is on disk$/
    );
    await expect(row.locator('.jp-BigmaacPanel-swap')).toHaveText(
      /^Swap: \/.+ \(\d[\d.]* (MiB|GiB) reserved\)$/
    );

    const names = await appendAndRun(page, LIST_NAMES);
    const namesBefore = await output(page, names);
    expect(namesBefore).toContain("'frame'");

    // Expanding lists the allocation and asks the kernel who owns it.
    const toggle = row.getByRole('button', {
      name: `Show the allocations of ${notebook}`
    });
    await expect(toggle).toHaveAttribute('aria-expanded', 'false');
    await toggle.focus();
    await page.keyboard.press('Enter');
    await expect(
      row.getByRole('button', { name: `Hide the allocations of ${notebook}` })
    ).toHaveAttribute('aria-expanded', 'true');
    const allocation = row
      .locator('.jp-BigmaacPanel-allocation')
      .filter({ hasText: 'frame' });
    await expect(allocation).toHaveCount(1, { timeout: SETTLE });
    await expect(allocation.locator('td').nth(0)).toHaveText(/^64\.\d MiB$/);
    await expect(allocation.locator('td').nth(3)).toHaveText(
      'frame: numpy.ndarray (1024, 8192)'
    );
    await expect(row.locator('.jp-BigmaacPanel-variables')).toHaveText(
      /^Variables looked up at .+: 1 owns disk-backed memory\.$/
    );

    // The question left nothing behind: same names, and the next cell's
    // execution count follows the user's own cells (the probe was silent).
    await page.notebook.runCell(names);
    expect(await output(page, names)).toBe(namesBefore);
    await expect(
      page.locator('.jp-Cell').nth(names).locator('.jp-InputPrompt')
    ).toHaveText('[4]:');

    if (process.env.BIGMAAC_SCREENSHOTS) {
      const dir = path.resolve(__dirname, '..', '..', 'docs', 'screenshots');
      await panel.screenshot({ path: path.join(dir, 'panel-light.png') });
      await page.theme.setDarkTheme();
      await expect(allocation).toBeVisible();
      await panel.screenshot({ path: path.join(dir, 'panel-dark.png') });
      await page.theme.setLightTheme();
    }

    // "Page out" writes it back and releases the RAM: resident falls.
    await row
      .getByRole('button', {
        name: `Page out the disk-backed memory of ${notebook}`
      })
      .click();
    await expect(row.locator('.jp-BigmaacPanel-pageoutStatus')).toHaveText(
      /^Paged out [\d.]+ (MiB|GiB) in [\d.]+ (ms|s)$/,
      { timeout: 60_000 }
    );
    await expect.poll(resident, { timeout: SETTLE }).toBeLessThan(8 * MIB);
    await expect(row.locator('.jp-BigmaacPanel-lastPageout')).toHaveText(
      /^Last page-out: .+ \(requested\), released 6\d\.\d MiB$/,
      { timeout: SETTLE }
    );
    // Still disk-backed: only its RAM was released.
    expect(parseSize(await bytes.innerText())).toBeGreaterThanOrEqual(64 * MIB);

    await page.notebook.close(false);
  });

  test('"Page out idle kernels" pages out the idle kernel and leaves the busy one alone', async ({
    page
  }) => {
    test.setTimeout(240_000);
    const sessionIds: string[] = [];
    const currentSession = () =>
      page.evaluate(() => {
        const widget = window.jupyterapp.shell.currentWidget as any;
        return widget.sessionContext.session.id as string;
      });
    const busy = (await page.notebook.createNew())!;
    // Allocate, then stay busy well past the test.
    const sleeping = await appendAndRun(
      page,
      'import numpy as np, time\nheld = np.ones(8 * 2**20)\ntime.sleep(600)',
      false
    );
    // Running before the next notebook takes the focus.
    await expect(
      page.locator('.jp-Cell').nth(sleeping).locator('.jp-InputPrompt')
    ).toHaveText('[*]:');
    sessionIds.push(await currentSession());
    const idle = (await page.notebook.createNew())!;
    await appendAndRun(page, 'import numpy as np\nheld = np.ones(8 * 2**20)');
    sessionIds.push(await currentSession());

    const panel = await openPanel(page);
    const busyRow = kernelRow(panel, busy);
    const idleRow = kernelRow(panel, idle);
    for (const row of [busyRow, idleRow]) {
      await expect
        .poll(
          async () =>
            parseSize(await row.locator('.jp-BigmaacPanel-bytes').innerText()),
          { timeout: SETTLE }
        )
        .toBeGreaterThanOrEqual(64 * MIB);
    }
    const button = panel.getByRole('button', { name: 'Page out idle kernels' });
    await expect(button).toBeEnabled({ timeout: SETTLE });
    await button.click();

    await expect(idleRow.locator('.jp-BigmaacPanel-pageoutStatus')).toHaveText(
      /^Paged out [\d.]+ (MiB|GiB) in [\d.]+ (ms|s)$/,
      { timeout: 60_000 }
    );
    await expect(button).toBeEnabled();
    await expect(busyRow.locator('.jp-BigmaacPanel-pageoutStatus')).toHaveText(
      ''
    );
    expect(await busyRow.getAttribute('data-pageout')).toBe('idle');

    // End both kernels (one is still sleeping) rather than wait for them.
    await page.evaluate(async ids => {
      const sessions = window.jupyterapp.serviceManager.sessions;
      await Promise.all(ids.map(id => sessions.shutdown(id)));
    }, sessionIds);
  });

  test('says so when the OOM killer killed a kernel, and restarts it with a lower threshold', async ({
    page,
    request
  }) => {
    test.skip(
      typeof process.getuid === 'function' && process.getuid() !== 0,
      'moving a kernel into a memory cgroup needs root'
    );
    test.setTimeout(300_000);
    const notebook = (await page.notebook.createNew())!;
    // The server keeps notebook choices across restarts (in the Jupyter data
    // directory): start from none, and leave none behind.
    const notebookPath = await page.evaluate(
      () =>
        (window.jupyterapp.shell.currentWidget as any).context.path as string
    );
    const forgetChoice = () =>
      request.delete(
        `/bigmaac/notebooks?path=${encodeURIComponent(notebookPath)}`
      );
    expect((await forgetChoice()).status()).toBe(204);
    const cgroupName = `bigmaac-galata-${process.pid}`;
    let cgroup = '';
    try {
      // The kernel moves itself into a 256 MiB memory cgroup of the test's own
      // (cgroup v1 or v2, no swap), and prints where it went.
      await page.notebook.setCell(0, 'code', moveIntoCgroup(cgroupName));
      await page.notebook.runCell(0);
      cgroup = (await output(page, 0)).trim();
      expect(cgroup).toContain(cgroupName);

      const kernelId = await page.evaluate(async () => {
        const widget = window.jupyterapp.shell.currentWidget as any;
        return widget.sessionContext.session.kernel.id as string;
      });
      // Wait until the server has seen the kernel there, so it counts the kill.
      await expect
        .poll(
          async () => {
            const body = await (await request.get('/bigmaac/kernels')).json();
            const kernel = body.kernels.find((k: any) => k.id === kernelId);
            return kernel?.bigmaac.memoryCgroup;
          },
          { timeout: SETTLE }
        )
        .toBe(cgroup);

      const panel = await openPanel(page);
      await expect(panel.locator('.jp-BigmaacPanel-oom')).toHaveCount(0);

      // 1 MiB arrays stay below the 32M threshold: anonymous memory, in RAM.
      await page.notebook.activate(notebook);
      // The cell never finishes: its kernel dies. Do not wait for it.
      await appendAndRun(
        page,
        'import numpy as np\nchunks = [np.ones(2**17) for _ in range(4096)]',
        false
      );

      await expect
        .poll(
          async () => {
            const body = await (await request.get('/bigmaac/kernels')).json();
            const kernel = body.kernels.find((k: any) => k.id === kernelId);
            return kernel?.bigmaac.previousOomKilled;
          },
          { timeout: 120_000, message: 'the server saw the OOM kill' }
        )
        .toBe(true);
      const banner = panel
        .locator('.jp-BigmaacPanel-oom')
        .filter({ hasText: notebook });
      await expect(banner).toHaveCount(1, { timeout: 120_000 });
      // JupyterLab's own "kernel restarting" dialog may cover the panel.
      const dialog = page.locator('.jp-Dialog');
      if (await dialog.isVisible()) {
        await dialog.getByRole('button', { name: /^(Ok|Dismiss)$/ }).click();
      }
      await expect(banner).toHaveAttribute('role', 'alert');
      await expect(banner.locator('.jp-BigmaacPanel-oomMessage')).toHaveText(
        `The kernel of ${notebook} was killed because the container ran out of memory. ` +
          'Its variables are lost. BigMaac was on, but memory below its threshold (32M) stays in RAM.'
      );

      await banner
        .getByRole('button', { name: 'Lower the threshold and restart' })
        .click();
      await expect(banner).toHaveCount(0, { timeout: 60_000 });
      // The notebook now starts its kernel with a quarter of the threshold.
      await expect
        .poll(
          async () => {
            const body = await (await request.get('/bigmaac/kernels')).json();
            const kernel = body.kernels.find((k: any) => k.id === kernelId);
            return kernel?.bigmaac.settings.min_bigmaac_size;
          },
          { timeout: SETTLE }
        )
        .toBe('8M');
      await expect(
        kernelRow(panel, notebook).locator('.jp-BigmaacPanel-state')
      ).toHaveText('on');
      // The open notebook holds the choice too (saved with it), and its
      // toolbar agrees with the kernel.
      expect(
        await page.evaluate(() =>
          (window.jupyterapp.shell.currentWidget as any).model.getMetadata(
            'bigmaac'
          )
        )
      ).toEqual({ enabled: true, min_bigmaac_size: '8M' });
      // With the side bar closed the toolbar has room for the toggle.
      await page.sidebar.close('right');
      await expect(
        page.locator(
          '.jp-Toolbar-item[data-jp-item-name="bigmaac-toggle"] .jp-BigmaacToggle-button'
        )
      ).toHaveText('BigMaac: on');
      // The restarted kernel runs cells, with the lower threshold.
      const check = await appendAndRun(
        page,
        'import os; print(os.environ["BIGMAAC_MIN_BIGMAAC_SIZE"])'
      );
      expect((await output(page, check)).trim()).toBe('8M');
    } finally {
      await page.notebook.close(false).catch(() => undefined);
      if (cgroup) {
        await removeCgroup(cgroup);
      }
      await forgetChoice();
    }
  });
});

/**
 * Python that moves the kernel into a new small memory cgroup and prints its
 * path; one `exec` line, so the editor's auto-indent cannot change it.
 */
function moveIntoCgroup(name: string): string {
  const code = `import os
limit = str(256 * 2**20)
v1 = "/sys/fs/cgroup/memory"
if os.path.isfile(os.path.join(v1, "memory.limit_in_bytes")):
    path = os.path.join(v1, ${JSON.stringify(name)})
    os.mkdir(path)
    open(os.path.join(path, "memory.limit_in_bytes"), "w").write(limit)
else:
    path = os.path.join("/sys/fs/cgroup", ${JSON.stringify(name)})
    os.mkdir(path)
    open(os.path.join(path, "memory.max"), "w").write(limit)
    if os.path.exists(os.path.join(path, "memory.swap.max")):
        open(os.path.join(path, "memory.swap.max"), "w").write("0")
open(os.path.join(path, "cgroup.procs"), "w").write(str(os.getpid()))
print(path)`;
  return `exec(${JSON.stringify(code)})`;
}

/** Remove the test's cgroup, killing whatever is still in it. */
async function removeCgroup(cgroup: string): Promise<void> {
  const procs = path.join(cgroup, 'cgroup.procs');
  for (let attempt = 0; attempt < 300; attempt++) {
    const pids = fs.existsSync(procs)
      ? fs.readFileSync(procs, 'utf8').split(/\s+/).filter(Boolean)
      : [];
    if (pids.length === 0) {
      // A member still exiting keeps rmdir busy for a moment after it left cgroup.procs.
      try {
        fs.rmdirSync(cgroup);
        return;
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
          return;
        }
        if ((error as NodeJS.ErrnoException).code !== 'EBUSY' || attempt === 299) {
          throw error;
        }
      }
    }
    if (attempt === 50) {
      for (const pid of pids) {
        try {
          process.kill(Number(pid), 'SIGKILL');
        } catch {
          // Gone already.
        }
      }
    }
    await new Promise(resolve => setTimeout(resolve, 100));
  }
  throw new Error(`cannot remove the test cgroup ${cgroup}`);
}
