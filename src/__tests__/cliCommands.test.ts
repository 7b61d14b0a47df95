/**
 * `bigmaac show`, `pageout --all`, `run --fry-size/--dir` and `doctor`, from the real CLI
 * bundle against real processes under the preload library.
 */
import { spawn, spawnSync } from 'child_process';
import { existsSync, mkdirSync, rmdirSync, writeFileSync } from 'fs';
import { join } from 'path';

import { ProcessGetResult } from '../common/protocol';
import type { PageoutAllResult } from '../cli/pageout';
import type { DoctorReport } from '../cli/doctor';
import {
  BUNDLE,
  MiB,
  oneLine,
  PYTHON,
  runCli,
  Sandbox,
  startBigProcess,
  startSteppingProcess,
  useTestBed,
  waitForOutput
} from './helpers';

const bed = useTestBed({ big: { bytes: 24 * MiB, kernelId: 'jest-kernel-show' } });
const { sandbox } = bed;

describe('bigmaac show', () => {
  it('shows the counters and an aligned allocations table with sizes and ages', async () => {
    const stepping = await startSteppingProcess(sandbox, 'jest-kernel-table');
    try {
      await stepping.grow(3);
      await stepping.grow(12);
      const { status, stdout, stderr } = runCli(sandbox, ['show', String(stepping.pid)]);
      expect(stderr).toBe('');
      expect(status).toBe(0);
      expect(stdout).toContain(`Process ${stepping.pid} (kernel jest-kernel-table, jest-step)`);
      expect(stdout).toMatch(/disk-backed {2}15\.0 MiB in 2 allocations/);
      expect(stdout).toMatch(/counters {5}\d+ allocs, \d+ frees/);
      // Every page was dirtied just now: all of it is in RAM.
      expect(stdout).toMatch(/in RAM {7}15\.0 MiB of 15\.0 MiB/);
      const lines = stdout.trimEnd().split('\n');
      const header = lines.findIndex(line =>
        /^\s*SIZE\s+IN RAM\s+AGE\s+TIER\s+ADDRESS$/.test(line)
      );
      expect(header).toBeGreaterThan(0);
      const rows = lines.slice(header + 1, header + 3);
      // Largest first, with units, residency, an age, the tier and a hex address.
      expect(rows[0]).toMatch(/^12\.0 MiB\s+12\.0 MiB\s+\d+ (ms|s)\s+big\s+0x[0-9a-f]+$/);
      expect(rows[1]).toMatch(/^\s*3\.00 MiB\s+3\.00 MiB\s+\d+ (ms|s)\s+big\s+0x[0-9a-f]+$/);
      expect(rows[0].indexOf('MiB')).toBe(rows[1].indexOf('MiB'));
    } finally {
      await stepping.stop();
    }
  });

  it('--json prints the agent process/get result', () => {
    const { status, stdout } = runCli(sandbox, ['show', String(bed.big.pid), '--json']);
    expect(status).toBe(0);
    const { process: details } = JSON.parse(stdout) as ProcessGetResult;
    expect(details.pid).toBe(bed.big.pid);
    expect(details.kernelId).toBe('jest-kernel-show');
    expect(details.counters.liveBigBytes).toBeGreaterThanOrEqual(24 * MiB);
    expect(details.allocations[0].size).toBeGreaterThanOrEqual(24 * MiB);
    expect(details.residency?.resident).toBeGreaterThanOrEqual(24 * MiB);
    expect(details.allocations[0].resident).toBeGreaterThanOrEqual(24 * MiB);
  });

  it('rejects a bad or unknown pid with one line and exit codes 2 and 3', () => {
    const bad = runCli(sandbox, ['show', '12x']);
    expect(bad.status).toBe(2);
    expect(oneLine(bad.stderr)).toBe("bigmaac: show: '12x' is not a pid (see 'bigmaac --help')");
    const missing = runCli(sandbox, ['show']);
    expect(missing.status).toBe(2);
    expect(oneLine(missing.stderr)).toMatch(/show: which process\? usage: bigmaac show PID/);
    const unknown = runCli(sandbox, ['show', String(process.pid)]);
    expect(unknown.status).toBe(3);
    expect(oneLine(unknown.stderr)).toBe(
      `bigmaac: process ${process.pid}: no BigMaac process with this pid`
    );
  });
});

describe('bigmaac pageout --all', () => {
  it('pages out every process and reports each', async () => {
    const second = await startBigProcess(sandbox, 8 * MiB, 'jest-kernel-all');
    try {
      const { status, stdout, stderr } = runCli(sandbox, ['pageout', '--all']);
      expect(stderr).toBe('');
      expect(status).toBe(0);
      expect(stdout).toContain(`Paged out process ${bed.big.pid}: wrote`);
      expect(stdout).toContain(`Paged out process ${second.pid}: wrote`);
      const json = runCli(sandbox, ['pageout', '--all', '--json']);
      expect(json.status).toBe(0);
      const result = JSON.parse(json.stdout) as PageoutAllResult;
      const pids = result.results.map(r => r.pid);
      expect(pids).toEqual(expect.arrayContaining([bed.big.pid, second.pid]));
      expect(result.failures).toEqual([]);
      // Just paged out: nothing of theirs is left resident.
      for (const r of result.results) {
        expect(r.residentAfter).toBeLessThanOrEqual(r.residentBefore);
      }
    } finally {
      await second.stop();
    }
  });

  it('says so when nothing runs, and refuses a pid together with --all', () => {
    const empty = new Sandbox();
    try {
      const none = runCli(empty, ['pageout', '--all']);
      expect(none.status).toBe(0);
      expect(none.stdout).toBe('No processes are running under BigMaac.\n');
    } finally {
      empty.dispose();
    }
    const both = runCli(sandbox, ['pageout', '--all', String(bed.big.pid)]);
    expect(both.status).toBe(2);
    expect(oneLine(both.stderr)).toBe(
      "bigmaac: pageout: give a PID or --all, not both (see 'bigmaac --help')"
    );
  });
});

describe('bigmaac run --fry-size --dir', () => {
  it('passes the fries threshold and the swap directory to the library', () => {
    const dir = join(sandbox.root, 'swap-from-option');
    const { status, stdout } = runCli(sandbox, [
      'run',
      '--min-size=8M',
      '--fry-size',
      '256K',
      '--dir',
      dir,
      '--',
      'sh',
      '-c',
      'echo "$BIGMAAC_MIN_FRY_SIZE|$BIGMAAC_DIR|$BIGMAAC_MIN_BIGMAAC_SIZE"'
    ]);
    expect(status).toBe(0);
    expect(stdout.trim()).toBe(`${256 * 1024}|${dir}|${8 * MiB}`);
  });

  it('puts the swap files in --dir, over an inherited BIGMAAC_DIR', async () => {
    const dir = join(sandbox.root, 'swap-used');
    mkdirSync(dir, { mode: 0o700 });
    const { swapDir } = await swapDirOfPythonIn(dir);
    expect(swapDir).toBe(dir);
  });

  it.each([
    [['--fry-size', 'huge'], /^bigmaac: run: invalid size 'huge': .* \(--fry-size\)$/],
    [['--fry-size', '64M', '--min-size', '32M'], /--fry-size \(67108864 bytes\) must be below/],
    [['--dir'], /^bigmaac: run: --dir needs a value/],
    [['--dir', '/dev/shm/bigmaac-jest-ram'], /--dir \/dev\/shm\/bigmaac-jest-ram: on tmpfs, which/],
    [['--dir', '/etc/hostname'], /--dir \/etc\/hostname: not a directory/],
    [['--frob', '1'], /^bigmaac: run: unknown option '--frob'/]
  ])('rejects %j with one line and exit code 2', (options, message) => {
    const { status, stderr } = runCli(sandbox, ['run', ...options, '--', 'true']);
    expect(status).toBe(2);
    expect(oneLine(stderr)).toMatch(message);
  });
});

/** Starts Python under `bigmaac run --dir dir` and reads the swap directory it published. */
async function swapDirOfPythonIn(dir: string): Promise<{ swapDir: string }> {
  const script = [
    'import os, sys',
    'a = bytearray(4 << 20)',
    'print(os.getpid(), flush=True)',
    'sys.stdin.read()'
  ].join('\n');
  const child = spawn(
    process.execPath,
    [BUNDLE, 'run', '--min-size', '1M', '--dir', dir, '--', PYTHON, '-c', script],
    { env: sandbox.env({ BIGMAAC_DIR: '/nonexistent-overridden' }), stdio: 'pipe' }
  );
  const exited = new Promise(done => child.once('exit', done));
  try {
    const output = await waitForOutput(child, '\n', 'python under bigmaac run --dir');
    const shown = runCli(sandbox, ['show', String(Number(output.trim())), '--json']);
    return { swapDir: (JSON.parse(shown.stdout) as ProcessGetResult).process.swapDir };
  } finally {
    child.stdin.end();
    await exited;
  }
}

describe('bigmaac doctor', () => {
  function doctor(args: string[] = [], env: NodeJS.ProcessEnv = {}) {
    const result = runCli(sandbox, ['doctor', '--json', ...args], env);
    return { status: result.status, report: JSON.parse(result.stdout) as DoctorReport };
  }
  const find = (report: DoctorReport, name: string) => report.checks.find(c => c.name === name);

  it('passes in the test environment, with a disk-backed swap directory', () => {
    const { status, report } = doctor();
    expect(report.errors).toBe(0);
    expect(status).toBe(0);
    expect(find(report, 'swap dir')).toMatchObject({ status: 'ok' });
    expect(find(report, 'swap dir')?.message).toContain(sandbox.swapDir);
    expect(find(report, 'library')?.message).toMatch(/libbigmaac\.so$/);
    expect(find(report, 'free disk')?.message).toMatch(/free/);
    const human = runCli(sandbox, ['doctor']);
    expect(human.status).toBe(0);
    expect(human.stdout).toMatch(/^STATUS\s+CHECK\s+DETAILS\n/);
    expect(human.stdout).toMatch(/\nOK\s+kernel\s+Linux /);
  });

  it('fails with exit code 1 on a RAM-backed swap directory', () => {
    const { status, report } = doctor(['--dir', '/dev/shm/bigmaac-jest-doctor']);
    expect(status).toBe(1);
    expect(find(report, 'swap dir')).toMatchObject({ status: 'error' });
    expect(find(report, 'swap dir')?.message).toMatch(/on tmpfs, which is RAM/);
    const human = runCli(sandbox, ['doctor'], { BIGMAAC_DIR: '/dev/shm/bigmaac-jest-doctor' });
    expect(human.status).toBe(1);
    expect(human.stdout).toMatch(/\nERROR\s+swap dir\s+\/dev\/shm\/bigmaac-jest-doctor/);
    // Warnings depend on the machine (no swap, say); the one error is the swap directory.
    const warnings = `${report.warnings} warning${report.warnings === 1 ? '' : 's'}`;
    expect(human.stdout).toMatch(new RegExp(`1 error, ${warnings}\\.\\n$`));
  });

  it('fails on another allocator preloaded before BigMaac', () => {
    // The loader complains on stderr that the file is missing; the name is what counts.
    const { status, report } = doctor([], { LD_PRELOAD: '/nonexistent/libjemalloc.so.2' });
    expect(status).toBe(1);
    expect(find(report, 'preload')?.status).toBe('error');
    expect(find(report, 'preload')?.message).toContain('libjemalloc.so.2');
  });

  it('fails when the library is missing', () => {
    const { status, report } = doctor([], { BIGMAAC_LIBRARY: '/nonexistent/libbigmaac.so' });
    expect(status).toBe(1);
    expect(find(report, 'library')?.message).toMatch(/library is missing/);
  });

  it('reports the memory limit of the cgroup it runs in', () => {
    const cgroup = makeMemoryCgroup(512 * MiB);
    if (!cgroup) {
      throw new Error('cannot create a memory cgroup: this test needs root and cgroup v1 or v2');
    }
    try {
      const enter = `echo $$ > ${cgroup.procs} && exec "$0" "$@"`;
      const inCgroup = (env: NodeJS.ProcessEnv) => {
        const argv = ['-c', enter, process.execPath, BUNDLE, 'doctor', '--json'];
        const result = spawnSync('sh', argv, { env: sandbox.env(env), encoding: 'utf8' });
        return { status: result.status, report: JSON.parse(result.stdout) as DoctorReport };
      };
      const { report } = inCgroup({});
      expect(find(report, 'memory')?.message).toMatch(/^cgroup v[12] limit 512 MiB/);
      expect(find(report, 'memory')?.message).toContain(cgroup.dir);
      // A dirty budget most of the limit: a warning, which does not fail the doctor.
      const tight = inCgroup({ BIGMAAC_DIRTY_BUDGET: '400M' });
      expect(find(tight.report, 'memory')).toMatchObject({ status: 'warning' });
      expect(find(tight.report, 'memory')?.message).toMatch(
        /BIGMAAC_DIRTY_BUDGET \(400 MiB\) is close to the limit/
      );
      expect(tight.status).toBe(tight.report.errors > 0 ? 1 : 0);
    } finally {
      cgroup.remove();
    }
  });

  it('rejects an unknown option with exit code 2', () => {
    const { status, stderr } = runCli(sandbox, ['doctor', '--fix']);
    expect(status).toBe(2);
    expect(oneLine(stderr)).toMatch(/^bigmaac: doctor: Unknown option '--fix'/);
  });
});

/** A fresh memory cgroup (v1 or v2) limited to `bytes`, or undefined when we cannot make one. */
function makeMemoryCgroup(bytes: number) {
  const name = `bigmaac-jest-${process.pid}`;
  const v1 = '/sys/fs/cgroup/memory';
  const v2 = '/sys/fs/cgroup';
  // `marker` tells the hierarchy apart: the v2 root has no memory.max of its own.
  const layouts = [
    { root: v1, marker: 'memory.limit_in_bytes', limit: 'memory.limit_in_bytes' },
    { root: v2, marker: 'cgroup.controllers', limit: 'memory.max' }
  ].map(layout => ({ ...layout, dir: join(layout.root, name) }));
  for (const layout of layouts) {
    if (!existsSync(join(layout.root, layout.marker))) {
      continue;
    }
    try {
      mkdirSync(layout.dir);
      writeFileSync(join(layout.dir, layout.limit), String(bytes));
    } catch {
      continue;
    }
    return {
      dir: layout.dir,
      procs: join(layout.dir, 'cgroup.procs'),
      remove: () => rmdirSync(layout.dir)
    };
  }
  return undefined;
}

describe('bigmaac top', () => {
  it('--once prints one frame with a bar per process', () => {
    const { status, stdout, stderr } = runCli(sandbox, ['top', '--once']);
    expect(stderr).toBe('');
    expect(status).toBe(0);
    const lines = stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^bigmaac top: \d+ process(es)?, [\d.]+ MiB disk-backed; every 1 s/);
    expect(lines[2]).toMatch(
      /^\s*PID\s+DISK-BACKED\s+IN RAM\s+PEAK\s+ALLOCS\s+RAM # \/ DISK \.\s+KERNEL/
    );
    const row = lines.find(line => line.trim().startsWith(`${bed.big.pid} `));
    // How much of its 24 MiB is in RAM depends on the page-outs run above: a size, and a bar
    // of # (in RAM) and . (on disk only).
    expect(row).toMatch(
      /^\s*\d+\s+24\.0 MiB\s+[\d.]+ (B|KiB|MiB)\s+24\.0 MiB\s+1\s+\[[#.]+ *\]\s+kernel jest-ker$/
    );
  });

  it('rejects a bad interval with one line and exit code 2', () => {
    const { status, stderr } = runCli(sandbox, ['top', '--interval', 'soon']);
    expect(status).toBe(2);
    expect(oneLine(stderr)).toMatch(/^bigmaac: top: --interval must be a number of seconds/);
  });
});
