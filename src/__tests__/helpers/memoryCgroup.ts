/**
 * Memory cgroups for the tests that need one (root; cgroup v1 or v2): a fresh
 * cgroup with a limit, processes and the agent started inside it, and removal
 * after each test, its processes killed first.
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

import { InitializeResult } from '../../common/protocol';
import { BUNDLE, INITIALIZE, Sandbox, useTestBed } from './index';

/** A memory cgroup's usage and limit, read from its files. */
export interface CgroupFiles {
  source: 'cgroup-v1' | 'cgroup-v2';
  dir: string;
  /** What the cgroup is charged now, bytes. */
  usage(): number;
  /** Null when unlimited. */
  limit(): number | null;
}

/** A memory cgroup a test made. */
export interface MemoryCgroup extends CgroupFiles {
  /** `argv` as it runs inside the cgroup (a shell enters it, then execs). */
  enter(argv: string[]): string[];
  /** Kills the cgroup's processes, then removes it. */
  remove(): Promise<void>;
}

function readNumber(path: string): number | null {
  const text = readFileSync(path, 'utf8').trim();
  return /^\d+$/.test(text) && Number(text) < 2 ** 62 ? Number(text) : null;
}

/** The files of the memory cgroup at `dir`. */
export function cgroupFiles(source: CgroupFiles['source'], dir: string): CgroupFiles {
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

/**
 * A fresh memory cgroup limited to `bytes`, v1 or v2, named after `purpose`;
 * throws when this machine cannot make one.
 */
export function makeMemoryCgroup(bytes: number, purpose: string): MemoryCgroup {
  const name = `bigmaac-jest-${purpose}-${process.pid}-${Date.now()}`;
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
    const procs = join(dir, 'cgroup.procs');
    return {
      ...cgroupFiles(layout.source, dir),
      enter: argv => ['sh', '-c', `echo $$ > ${procs} && exec "$@"`, 'sh', ...argv],
      remove: () => removeCgroup(dir)
    };
  }
  throw new Error('cannot create a memory cgroup: these tests need root and cgroup v1 or v2');
}

/** The agent bundle on stdio, with an initialized client connection to it. */
export interface AgentInCgroup {
  child: ChildProcess;
  connection: MessageConnection;
  init: InitializeResult;
}

/**
 * What one test started: cgroups, processes and agent connections, all ended
 * and removed by `cleanUp` (call it after each test).
 */
export class CgroupTestBed {
  constructor(private readonly _sandbox: Sandbox) {}

  /** A fresh memory cgroup limited to `bytes`; see `makeMemoryCgroup`. */
  cgroup(bytes: number, purpose: string): MemoryCgroup {
    const made = makeMemoryCgroup(bytes, purpose);
    this._cgroups.push(made);
    return made;
  }

  /** `argv` in the sandbox's environment plus `env`, inside `cgroup` when given. */
  spawn(
    cgroup: MemoryCgroup | undefined,
    argv: string[],
    env: NodeJS.ProcessEnv = {}
  ): ChildProcess {
    const [command, ...args] = cgroup ? cgroup.enter(argv) : argv;
    const child = spawn(command, args, {
      env: this._sandbox.env(env),
      stdio: ['pipe', 'pipe', 'pipe']
    });
    this._children.push(child);
    return child;
  }

  /** The agent bundle, inside `cgroup` when given, initialized. */
  async agent(cgroup?: MemoryCgroup): Promise<AgentInCgroup> {
    const child = this.spawn(cgroup, [process.execPath, BUNDLE, 'agent']);
    const connection = createMessageConnection(
      new StreamMessageReader(child.stdout!),
      new StreamMessageWriter(child.stdin!)
    );
    connection.listen();
    this._connections.push(connection);
    const init = await connection.sendRequest<InitializeResult>('initialize', INITIALIZE);
    return { child, connection, init };
  }

  /** Disposes the connections, kills the processes, then removes the cgroups. */
  async cleanUp(): Promise<void> {
    this._connections.splice(0).forEach(c => c.dispose());
    this._children.splice(0).forEach(child => child.kill('SIGKILL'));
    await Promise.all(this._cgroups.splice(0).map(c => c.remove()));
  }

  private _cgroups: MemoryCgroup[] = [];
  private _children: ChildProcess[] = [];
  private _connections: MessageConnection[] = [];
}

/**
 * `useTestBed` for the cgroup tests: a CgroupTestBed over the file's sandbox,
 * cleaned up after each test. Call it at the file's top level.
 */
export function useCgroupTestBed(): CgroupTestBed {
  const bed = new CgroupTestBed(useTestBed().sandbox);
  afterEach(() => bed.cleanUp());
  return bed;
}
