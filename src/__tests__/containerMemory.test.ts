/**
 * Container memory from the real agent (`memory/get`, `container` in `stats/update`) against
 * the memory cgroup files of the agent's own cgroup; one test runs the agent inside a fresh
 * cgroup with a known limit (root; v1 or v2), removed afterwards.
 */
import { ChildProcess, spawn } from 'child_process';
import { existsSync, mkdirSync, readFileSync, rmdirSync, writeFileSync } from 'fs';
import { join } from 'path';
import {
  createMessageConnection,
  MessageConnection,
  StreamMessageReader,
  StreamMessageWriter
} from 'vscode-jsonrpc/node';

import { InitializeResult, MemoryGetResult, StatsUpdateParams } from '../common/protocol';
import { BUNDLE, INITIALIZE, MiB, recordNotifications, requireArtifacts, Sandbox } from './helpers';

/** Usage moves while the agent runs; what it reports must be this close to the file. */
const USAGE_TOLERANCE = 16 * MiB;

interface CgroupFiles {
  source: 'cgroup-v1' | 'cgroup-v2';
  dir: string;
  usage(): number;
  /** Null when unlimited. */
  limit(): number | null;
}

function readNumber(path: string): number | null {
  const text = readFileSync(path, 'utf8').trim();
  return /^\d+$/.test(text) && Number(text) < 2 ** 62 ? Number(text) : null;
}

function filesAt(source: CgroupFiles['source'], dir: string): CgroupFiles {
  const [usage, limit] =
    source === 'cgroup-v1'
      ? ['memory.usage_in_bytes', 'memory.limit_in_bytes']
      : ['memory.current', 'memory.max'];
  return {
    source,
    dir,
    usage: () => readNumber(join(dir, usage)) ?? NaN,
    limit: () => readNumber(join(dir, limit))
  };
}

/** The memory cgroup files of `pid`, straight from /proc/PID/cgroup; null when it has none. */
function cgroupFilesOf(pid: number): CgroupFiles | null {
  const lines = readFileSync(`/proc/${pid}/cgroup`, 'utf8').split('\n');
  const v1 = lines.map(l => l.split(':')).find(f => f[1]?.split(',').includes('memory'));
  if (v1) {
    const dir = join('/sys/fs/cgroup/memory', v1[2]);
    return existsSync(join(dir, 'memory.usage_in_bytes')) ? filesAt('cgroup-v1', dir) : null;
  }
  const v2 = lines.find(l => l.startsWith('0::'));
  const dir = v2 ? join('/sys/fs/cgroup', v2.slice(3)) : '';
  return v2 && existsSync(join(dir, 'memory.current')) ? filesAt('cgroup-v2', dir) : null;
}

/** A fresh memory cgroup limited to `bytes`, v1 or v2; throws when none can be made. */
function makeCgroup(bytes: number): CgroupFiles {
  const name = `bigmaac-jest-container-${process.pid}-${Date.now()}`;
  const layouts = [
    { root: '/sys/fs/cgroup/memory', marker: 'memory.limit_in_bytes', source: 'cgroup-v1' },
    { root: '/sys/fs/cgroup', marker: 'cgroup.controllers', source: 'cgroup-v2' }
  ] as const;
  for (const layout of layouts) {
    if (!existsSync(join(layout.root, layout.marker))) {
      continue;
    }
    const dir = join(layout.root, name);
    try {
      mkdirSync(dir);
      const limitFile = layout.source === 'cgroup-v1' ? 'memory.limit_in_bytes' : 'memory.max';
      writeFileSync(join(dir, limitFile), String(bytes));
    } catch {
      continue;
    }
    return filesAt(layout.source, dir);
  }
  throw new Error('cannot create a memory cgroup: this test needs root and cgroup v1 or v2');
}

async function removeCgroup(dir: string): Promise<void> {
  const procs = join(dir, 'cgroup.procs');
  for (let attempt = 0; attempt < 50; attempt++) {
    for (const pid of readFileSync(procs, 'utf8').split('\n').filter(Boolean)) {
      try {
        process.kill(Number(pid), 'SIGKILL');
      } catch {
        // already gone
      }
    }
    try {
      rmdirSync(dir);
      return;
    } catch {
      await new Promise(done => setTimeout(done, 100));
    }
  }
  throw new Error(`cannot remove the test cgroup ${dir}`);
}

let sandbox: Sandbox;
const children: ChildProcess[] = [];
const connections: MessageConnection[] = [];
const cgroupDirs: string[] = [];

/** The agent bundle, entered into `cgroupDir` first when given, initialized. */
async function agent(
  cgroupDir?: string
): Promise<{ child: ChildProcess; connection: MessageConnection; init: InitializeResult }> {
  const argv = [process.execPath, BUNDLE, 'agent'];
  const [command, ...args] = cgroupDir
    ? ['sh', '-c', `echo $$ > ${join(cgroupDir, 'cgroup.procs')} && exec "$@"`, 'sh', ...argv]
    : argv;
  const child = spawn(command, args, { env: sandbox.env({}), stdio: ['pipe', 'pipe', 'pipe'] });
  children.push(child);
  const connection = createMessageConnection(
    new StreamMessageReader(child.stdout!),
    new StreamMessageWriter(child.stdin!)
  );
  connection.listen();
  connections.push(connection);
  const init = await connection.sendRequest<InitializeResult>('initialize', INITIALIZE);
  return { child, connection, init };
}

/** Checks a reported value against the cgroup files read just before and after it. */
function expectMatches(
  reported: MemoryGetResult['container'],
  files: CgroupFiles,
  usageBefore: number
): void {
  const usageAfter = files.usage();
  expect(reported).not.toBeNull();
  expect(reported!.source).toBe(files.source);
  expect(reported!.limit).toBe(files.limit());
  expect(reported!.usage).toBeGreaterThan(0);
  expect(reported!.usage).toBeGreaterThanOrEqual(
    Math.min(usageBefore, usageAfter) - USAGE_TOLERANCE
  );
  expect(reported!.usage).toBeLessThanOrEqual(Math.max(usageBefore, usageAfter) + USAGE_TOLERANCE);
}

beforeAll(() => {
  requireArtifacts();
  sandbox = new Sandbox();
});

afterEach(async () => {
  connections.splice(0).forEach(c => c.dispose());
  children.splice(0).forEach(child => child.kill('SIGKILL'));
  await Promise.all(cgroupDirs.splice(0).map(removeCgroup));
});

afterAll(() => sandbox?.dispose());

describe('container memory', () => {
  it('reports the cgroup the agent runs in, or null when it has none', async () => {
    const { child, connection, init } = await agent();
    expect(init.capabilities.containerMemory).toBe(true);
    const files = cgroupFilesOf(child.pid!);
    const usageBefore = files?.usage() ?? 0;
    const result = await connection.sendRequest<MemoryGetResult>('memory/get');
    expect(typeof result.measuredAt).toBe('number');
    if (files === null) {
      expect(result.container).toBeNull();
    } else {
      expectMatches(result.container, files, usageBefore);
    }
  }, 30000);

  it('reports a fresh cgroup with its limit in memory/get and every stats/update', async () => {
    const cgroup = makeCgroup(512 * MiB);
    cgroupDirs.push(cgroup.dir);
    const { child, connection } = await agent(cgroup.dir);
    // The agent really is inside: the files it reads are the test's cgroup.
    expect(cgroupFilesOf(child.pid!)?.dir).toBe(cgroup.dir);

    let usageBefore = cgroup.usage();
    const result = await connection.sendRequest<MemoryGetResult>('memory/get');
    expect(result.container?.limit).toBe(512 * MiB);
    expectMatches(result.container, cgroup, usageBefore);

    const updates = recordNotifications<StatsUpdateParams>(connection, 'stats/update');
    usageBefore = cgroup.usage();
    await connection.sendRequest('stats/subscribe', { intervalMs: 100 });
    const update = await updates.waitFor(() => true);
    expect(update.container?.limit).toBe(512 * MiB);
    expectMatches(update.container ?? null, cgroup, usageBefore);
  }, 30000);
});
