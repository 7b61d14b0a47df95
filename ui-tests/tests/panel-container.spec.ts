/**
 * The panel's header reports the container's memory (the agent's cgroup, which
 * is this test's too: the server is its child) and the swap disk's free space,
 * checked against the cgroup files and statfs of the server's swap directory.
 */
import { expect, test } from '@jupyterlab/galata';
import { existsSync, readFileSync, statfsSync } from 'fs';
import { join } from 'path';

const PANEL_ID = 'jp-bigmaac-panel';

const UNITS: Record<string, number> = {
  B: 1,
  KiB: 2 ** 10,
  MiB: 2 ** 20,
  GiB: 2 ** 30,
  TiB: 2 ** 40
};

/** Sizes as the panel writes them ("64.0 MiB"), in bytes, in order. */
function sizesIn(text: string): number[] {
  return [...text.matchAll(/([\d.]+) (B|KiB|MiB|GiB|TiB)\b/g)].map(
    m => parseFloat(m[1]) * UNITS[m[2]]
  );
}

/** The memory limit of this process's cgroup, v1 or v2; null when none or unlimited. */
function cgroupLimit(): number | null | undefined {
  const lines = readFileSync('/proc/self/cgroup', 'utf8').split('\n');
  const v1 = lines.map(l => l.split(':')).find(f => f[1]?.split(',').includes('memory'));
  const [dir, file] = v1
    ? [join('/sys/fs/cgroup/memory', v1[2]), 'memory.limit_in_bytes']
    : [join('/sys/fs/cgroup', lines.find(l => l.startsWith('0::'))?.slice(3) ?? ''), 'memory.max'];
  if (!existsSync(join(dir, file))) {
    return undefined; // no memory cgroup: the panel shows no line
  }
  const text = readFileSync(join(dir, file), 'utf8').trim();
  return /^\d+$/.test(text) && Number(text) < 2 ** 62 ? Number(text) : null;
}

/** Close enough for a size the panel rounded to three significant digits. */
function expectAbout(shown: number, actual: number): void {
  expect(Math.abs(shown - actual)).toBeLessThanOrEqual(actual * 0.01);
}

test('shows the container memory against its limit and the swap disk', async ({
  page
}) => {
  const status = await (await page.request.get('bigmaac/status')).json();
  const swapDir: string = status.swap.dir;

  await page.sidebar.openTab(PANEL_ID);
  const summary = page.locator(`#${PANEL_ID} .jp-BigmaacPanel-summaryText`);

  const disk = statfsSync(swapDir);
  const swapLine = /^Swap disk: .+ free of .+$/m;
  await expect(summary).toHaveText(swapLine, { timeout: 30_000 });
  const [free, total] = sizesIn(swapLine.exec((await summary.textContent())!)![0]);
  expectAbout(total, disk.blocks * disk.bsize);
  expect(free).toBeLessThanOrEqual(total);

  const limit = cgroupLimit();
  if (limit === undefined) {
    await expect(summary).not.toHaveText(/Container memory/);
    return;
  }
  const memoryLine = /^Container memory: .+$/m;
  await expect(summary).toHaveText(memoryLine, { timeout: 30_000 });
  const line = memoryLine.exec((await summary.textContent())!)![0];
  if (limit === null) {
    expect(line).toMatch(/\(no limit\)$/);
  } else {
    const [usage, shownLimit] = sizesIn(line);
    expectAbout(shownLimit, limit);
    expect(usage).toBeGreaterThan(0);
  }
  // The limit is drawn in the container chart.
  await expect(
    page.locator(`#${PANEL_ID} .jp-BigmaacChart-containerLimit`)
  ).toHaveAttribute('d', limit === null ? '' : /^M/);
});
