/**
 * The `bigmaac` CLI bundle: what a user sees on stdout, stderr and in the exit code.
 */
import { spawn } from 'child_process';

import { ProcessesListResult } from '../common/protocol';
import {
  BUNDLE,
  LIBRARY,
  MiB,
  oneLine,
  PYTHON,
  runCli,
  Sandbox,
  useTestBed,
  waitForOutput
} from './helpers';

const bed = useTestBed({ big: { bytes: 64 * MiB } });
const { sandbox } = bed;

describe('bigmaac ps', () => {
  it('--json lists the process with its disk-backed memory', () => {
    const { status, stdout, stderr } = runCli(sandbox, ['ps', '--json']);
    expect(stderr).toBe('');
    expect(status).toBe(0);
    const { processes } = JSON.parse(stdout) as ProcessesListResult;
    const info = processes.find(p => p.pid === bed.big.pid);
    expect(info?.diskBacked.bytes).toBeGreaterThanOrEqual(64 * MiB);
    expect(info?.kernelId).toBe('jest-kernel-0001');
  });

  it('prints aligned columns with units', () => {
    const { status, stdout } = runCli(sandbox, ['ps']);
    expect(status).toBe(0);
    const lines = stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^\s*PID\s+DISK-BACKED\s+ALLOCS\s+PEAK\s+KERNEL\/LABEL\s+COMMAND$/);
    const row = lines.find(line => line.trim().startsWith(`${bed.big.pid} `));
    expect(row).toMatch(/\d+\.\d+ MiB/);
    expect(row).toContain('kernel jest-ker');
    // Right-aligned numeric columns end where their headers end.
    const header = lines[0];
    const bytesEnd = header.indexOf('DISK-BACKED') + 'DISK-BACKED'.length;
    expect(row![bytesEnd - 1]).toBe('B');
  });

  it('reports a missing addon with one line and exit code 5', () => {
    const { status, stdout, stderr } = runCli(sandbox, ['ps'], {
      BIGMAAC_ADDON: '/nonexistent/bigmaac.node'
    });
    expect(status).toBe(5);
    expect(stdout).toBe('');
    expect(oneLine(stderr)).toMatch(
      /^bigmaac: the BigMaac addon is missing \(looked for \/nonexistent\/bigmaac.node\)/
    );
  });

  it('says so when nothing runs under BigMaac', () => {
    const empty = new Sandbox();
    try {
      const { status, stdout } = runCli(empty, ['ps']);
      expect(status).toBe(0);
      expect(stdout).toBe('No processes are running under BigMaac.\n');
    } finally {
      empty.dispose();
    }
  });
});

describe('bigmaac pageout', () => {
  it('pages out a process and reports what it wrote', () => {
    const { status, stdout } = runCli(sandbox, ['pageout', String(bed.big.pid), '--json']);
    expect(status).toBe(0);
    const result = JSON.parse(stdout);
    expect(result.pid).toBe(bed.big.pid);
    expect(result.residentAfter).toBeLessThanOrEqual(result.residentBefore);
  });

  it('rejects a malformed pid with one line and exit code 2', () => {
    const { status, stdout, stderr } = runCli(sandbox, ['pageout', 'abc']);
    expect(status).toBe(2);
    expect(stdout).toBe('');
    expect(oneLine(stderr)).toBe("bigmaac: pageout: 'abc' is not a pid (see 'bigmaac --help')");
  });

  it('rejects a pid not under BigMaac with one line and exit code 3', () => {
    const { status, stderr } = runCli(sandbox, ['pageout', String(process.pid)]);
    expect(status).toBe(3);
    expect(oneLine(stderr)).toBe(
      `bigmaac: process ${process.pid}: no BigMaac process with this pid`
    );
  });
});

describe('bigmaac run', () => {
  it('propagates the exit code of the command', () => {
    const { status } = runCli(sandbox, ['run', '--', 'sh', '-c', 'exit 7']);
    expect(status).toBe(7);
  });

  it('dies of the signal that killed the command', () => {
    const { status, signal } = runCli(sandbox, ['run', '--', 'sh', '-c', 'kill -TERM $$']);
    expect(status).toBeNull();
    expect(signal).toBe('SIGTERM');
  });

  it('appends the library to LD_PRELOAD and sets the threshold in bytes', () => {
    const { status, stdout } = runCli(
      sandbox,
      ['run', '--min-size', '2M', '--', 'sh', '-c', 'echo "$LD_PRELOAD|$BIGMAAC_MIN_BIGMAAC_SIZE"'],
      { LD_PRELOAD: '/nonexistent/libother.so' }
    );
    expect(status).toBe(0);
    // The loader warns about the missing libother.so on stderr; that is the user's setting.
    expect(stdout.trim()).toBe(`/nonexistent/libother.so:${LIBRARY}|${2 * MiB}`);
  });

  it('runs a command whose big allocations are disk-backed', async () => {
    const script = [
      'import os, sys',
      'a = bytearray(48 << 20)',
      'print("ready", os.getpid(), flush=True)',
      'sys.stdin.read()'
    ].join('\n');
    const args = [BUNDLE, 'run', '--min-size', '1M', '--', PYTHON, '-c', script];
    const child = spawn(process.execPath, args, {
      env: sandbox.env(),
      stdio: ['pipe', 'pipe', 'pipe']
    });
    const exited = new Promise(done => child.on('exit', code => done(code)));
    const output = await waitForOutput(child, '\n', 'bigmaac run');
    const pid = Number(/ready (\d+)/.exec(output)?.[1]);
    const listing = runCli(sandbox, ['ps', '--json']).stdout;
    const { processes } = JSON.parse(listing) as ProcessesListResult;
    expect(processes.find(p => p.pid === pid)?.diskBacked.bytes).toBeGreaterThanOrEqual(48 * MiB);
    child.stdin.end();
    await expect(exited).resolves.toBe(0);
  });

  it('rejects a bad size with one line and exit code 2', () => {
    const { status, stderr } = runCli(sandbox, ['run', '--min-size', 'lots', '--', 'true']);
    expect(status).toBe(2);
    expect(oneLine(stderr)).toMatch(/^bigmaac: run: invalid size 'lots': use bytes or a number/);
  });

  it('reports a missing library with one line and exit code 5', () => {
    const { status, stderr } = runCli(sandbox, ['run', '--', 'true'], {
      BIGMAAC_LIBRARY: '/nonexistent/libbigmaac.so'
    });
    expect(status).toBe(5);
    expect(oneLine(stderr)).toMatch(
      /^bigmaac: the BigMaac library is missing: \/nonexistent\/libbigmaac.so/
    );
  });

  it('reports a command that does not exist with exit code 127', () => {
    const { status, stderr } = runCli(sandbox, ['run', '--', 'no-such-command-bigmaac']);
    expect(status).toBe(127);
    expect(oneLine(stderr)).toBe('bigmaac: run: command not found: no-such-command-bigmaac');
  });
});

describe('bigmaac', () => {
  it('prints its version and help', () => {
    expect(runCli(sandbox, ['--version']).stdout).toMatch(/^bigmaac \d+\.\d+\.\d+\n$/);
    const help = runCli(sandbox, ['--help']);
    expect(help.status).toBe(0);
    expect(help.stdout).toContain('run [--min-size SIZE] -- CMD ARGS...');
  });

  it('rejects an unknown command or option with exit code 2', () => {
    expect(runCli(sandbox, ['frobnicate']).status).toBe(2);
    const { status, stderr } = runCli(sandbox, ['ps', '--frob']);
    expect(status).toBe(2);
    expect(oneLine(stderr)).toMatch(/^bigmaac: ps: Unknown option '--frob'/);
  });
});
