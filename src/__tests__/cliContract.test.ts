/**
 * What docs/cli.md promises scripts, checked against the real CLI: the exact keys of every
 * `--json` output (read from the docs themselves, so the two cannot drift apart), and the
 * exit codes for another user's process (4) and a page-out already running (6).
 */
import { spawnSync } from 'child_process';
import { readFileSync } from 'fs';
import { join } from 'path';

import { PageoutProgress, ProgressParams } from '../common/protocol';
import {
  BUNDLE,
  initialize,
  MiB,
  oneLine,
  recordNotifications,
  REPO,
  runCli,
  startAgent,
  startBigProcess,
  useTestBed
} from './helpers';

const CLI_DOC = readFileSync(join(REPO, 'docs', 'cli.md'), 'utf8');
const PROTOCOL_DOC = readFileSync(join(REPO, 'docs', 'protocol.md'), 'utf8');
/** The uid the "other user" CLI runs as (Debian's nobody). */
const NOBODY = 65534;

/** The backticked names in the first column of the first table after `marker`. */
function tableFields(doc: string, marker: string): string[] {
  const start = doc.indexOf(marker);
  expect(start).toBeGreaterThanOrEqual(0);
  const lines = doc.slice(start).split('\n');
  const first = lines.findIndex(line => line.startsWith('|'));
  const rows = lines.slice(first + 2); // past the header and its rule
  const table = rows.slice(0, rows.findIndex(line => !line.startsWith('|')));
  return table.flatMap(row => {
    const cell = row.split('|')[1];
    return [...cell.matchAll(/`([^`]+)`/g)].map(match => match[1]);
  });
}

/** The cell in column `column` of the row of `field` in the first table after `marker`. */
function tableCell(doc: string, marker: string, field: string, column: number): string {
  const start = doc.indexOf(marker);
  const row = doc
    .slice(start)
    .split('\n')
    .find(line => line.startsWith(`| \`${field}\` |`));
  expect(row).toBeDefined();
  return row!.split('|')[column + 1];
}

/** The names quoted in `{"a", "b", ...}` right after `marker` in docs/cli.md. */
function quotedKeys(marker: string): string[] {
  const start = CLI_DOC.indexOf(marker);
  expect(start).toBeGreaterThanOrEqual(0);
  const braces = /\{([^{}]*)\}/.exec(CLI_DOC.slice(start + marker.length))!;
  return [...braces[1].matchAll(/"(\w+)"/g)].map(match => match[1]);
}

const sorted = (keys: string[]) => [...keys].sort();
const keysOf = (value: object) => sorted(Object.keys(value));

const PROCESS_INFO = tableFields(PROTOCOL_DOC, '`ProcessInfo`:');

const bed = useTestBed({ big: { bytes: 16 * MiB, kernelId: 'jest-kernel-contract' } });
const { sandbox } = bed;

describe('--json keys are those the docs list', () => {
  it('ps --json: {"processes": [ProcessInfo]}', () => {
    expect(PROCESS_INFO).toContain('startTime');
    const { status, stdout } = runCli(sandbox, ['ps', '--json']);
    expect(status).toBe(0);
    const output = JSON.parse(stdout);
    expect(keysOf(output)).toEqual(['processes']);
    expect(output.processes.length).toBeGreaterThan(0);
    for (const process of output.processes) {
      expect(keysOf(process)).toEqual(sorted(PROCESS_INFO));
      expect(keysOf(process.diskBacked)).toEqual(['bytes', 'count']);
    }
  });

  it('show --json: {"process": ProcessDetails}', () => {
    const details = tableFields(PROTOCOL_DOC, 'where `ProcessDetails` is a `ProcessInfo` plus:');
    const residency = tableFields(PROTOCOL_DOC, '`ProcessResidency`:');
    const countersCell = tableCell(
      PROTOCOL_DOC,
      'where `ProcessDetails` is a `ProcessInfo` plus:',
      'counters',
      2
    );
    const counters = [...countersCell.matchAll(/`(\w+)`/g)].map(match => match[1]);
    const allocationCell = tableCell(
      PROTOCOL_DOC,
      'where `ProcessDetails` is a `ProcessInfo` plus:',
      'allocations',
      2
    );
    const allocation = /`\{ ([^}]*) \}`/.exec(allocationCell)![1].split(', ');
    const { status, stdout } = runCli(sandbox, ['show', String(bed.big.pid), '--json']);
    expect(status).toBe(0);
    const output = JSON.parse(stdout);
    expect(keysOf(output)).toEqual(['process']);
    expect(keysOf(output.process)).toEqual(sorted([...PROCESS_INFO, ...details]));
    expect(keysOf(output.process.residency)).toEqual(sorted(residency));
    expect(keysOf(output.process.counters)).toEqual(sorted(counters));
    // Measured, the allocations carry the optional `resident` and `dirty` too.
    const allocationKeys = allocation.map(key => key.replace(/\?$/, ''));
    for (const entry of output.process.allocations) {
      expect(keysOf(entry)).toEqual(sorted(allocationKeys));
    }
  });

  it('pageout PID --json and pageout --all --json', () => {
    const one = quotedKeys("`--json` prints the agent's\n`process/pageout` result: `");
    expect(one).toEqual(['pid', 'bytesWritten', 'durationMs', 'residentBefore', 'residentAfter']);
    const single = runCli(sandbox, ['pageout', String(bed.big.pid), '--json']);
    expect(single.status).toBe(0);
    expect(keysOf(JSON.parse(single.stdout))).toEqual(sorted(one));

    const marker = '`--all --json` prints\n`';
    const start = CLI_DOC.indexOf(marker);
    expect(start).toBeGreaterThanOrEqual(0);
    const shape = CLI_DOC.slice(start + marker.length).split('`')[0];
    const top = [...shape.matchAll(/"(\w+)": \[/g)].map(match => match[1]);
    expect(top).toEqual(['results', 'failures', 'exited']);
    const failureKeys = [.../\[\{([^}]*)\}/.exec(shape)![1].matchAll(/"(\w+)"/g)].map(m => m[1]);
    const all = runCli(sandbox, ['pageout', '--all', '--json']);
    expect(all.status).toBe(0);
    const summary = JSON.parse(all.stdout);
    expect(keysOf(summary)).toEqual(sorted(top));
    expect(summary.results.length).toBeGreaterThan(0);
    for (const result of summary.results) {
      expect(keysOf(result)).toEqual(sorted(one));
    }
    expect(failureKeys).toEqual(['pid', 'message']);
  });

  it('doctor --json', () => {
    const marker = '`--json` prints `';
    const start = CLI_DOC.indexOf(marker, CLI_DOC.indexOf('## `bigmaac doctor'));
    const shape = CLI_DOC.slice(start + marker.length).split('`')[0];
    const checkKeys = [.../\[\{([^}]*)\}/.exec(shape)![1].matchAll(/"(\w+)"/g)].map(m => m[1]);
    const top = [...shape.matchAll(/"(\w+)":\s/g)].map(match => match[1]);
    const names = tableFields(CLI_DOC, '| check | error when | warning when |');
    const { stdout } = runCli(sandbox, ['doctor', '--json']);
    const report = JSON.parse(stdout);
    expect(keysOf(report)).toEqual(sorted(top));
    expect(top).toEqual(['checks', 'errors', 'warnings']);
    for (const check of report.checks) {
      expect(keysOf(check)).toEqual(sorted(checkKeys));
      expect(['ok', 'warning', 'error']).toContain(check.status);
    }
    // Every check, in the documented order, under its documented name.
    expect(report.checks.map((check: { name: string }) => check.name)).toEqual(names);
  });
});

describe('exit codes', () => {
  const asRoot = process.getuid?.() === 0;

  (asRoot ? it : it.skip)("exits with 4 for another user's process", () => {
    // The CLI runs as nobody, against a process (and segment directory) of root's.
    const result = spawnSync(process.execPath, [BUNDLE, 'show', String(bed.big.pid)], {
      env: sandbox.env(),
      encoding: 'utf8',
      uid: NOBODY,
      gid: NOBODY,
      timeout: 20000
    });
    expect(result.status).toBe(4);
    expect(oneLine(result.stderr)).toMatch(/^bigmaac: /);
    const pageout = spawnSync(process.execPath, [BUNDLE, 'pageout', String(bed.big.pid)], {
      env: sandbox.env(),
      encoding: 'utf8',
      uid: NOBODY,
      gid: NOBODY,
      timeout: 20000
    });
    expect(pageout.status).toBe(4);
  });

  it('exits with 6 while a page-out of the process is already running', async () => {
    const target = await startBigProcess(sandbox, 16 * MiB, 'jest-kernel-busy-cli');
    const agent = await initialize(startAgent(sandbox));
    const progress = recordNotifications<ProgressParams<PageoutProgress>>(
      agent.connection,
      '$/progress'
    );
    // Stopped, the process cannot serve the agent's page-out, which waits for it; a
    // report means the agent's request is posted to the process.
    target.child.kill('SIGSTOP');
    let first: Promise<unknown>;
    try {
      first = agent.connection.sendRequest('process/pageout', {
        pid: target.pid,
        workDoneToken: 'first'
      });
      await progress.waitFor(p => p.value.kind === 'report');
      const second = runCli(sandbox, ['pageout', String(target.pid)]);
      expect(second.status).toBe(6);
      expect(oneLine(second.stderr)).toMatch(/a page-out is already running/);
    } finally {
      target.child.kill('SIGCONT');
    }
    await expect(first).resolves.toHaveProperty('pid', target.pid);
    await agent.stop();
    await target.stop();
  });
});
