/**
 * The memory-pressure policy and the OOM explanation inside real memory cgroups (root;
 * cgroup v1 or v2). Every cgroup is removed afterwards, its processes killed first.
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

import { PageoutFinishedParams, ProcessExitedParams, ProcessGetResult } from '../common/protocol';
import {
  allocatingScript,
  BUNDLE,
  INITIALIZE,
  LIBRARY,
  MiB,
  PYTHON,
  recordNotifications,
  requireArtifacts,
  Sandbox,
  steppingScript,
  waitForOutput
} from './helpers';

interface MemoryCgroup {
  dir: string;
  /** What the cgroup is charged now, bytes. */
  usage(): number;
  /** `argv` as it runs inside the cgroup (a shell enters it, then execs). */
  enter(argv: string[]): string[];
  remove(): Promise<void>;
}

/** A fresh memory cgroup limited to `bytes`; throws when this machine cannot make one. */
function makeMemoryCgroup(bytes: number): MemoryCgroup {
  const name = `bigmaac-jest-policy-${process.pid}-${Date.now()}`;
  const layouts = [
    {
      root: '/sys/fs/cgroup/memory',
      marker: 'memory.limit_in_bytes',
      limit: 'memory.limit_in_bytes',
      usage: 'memory.usage_in_bytes'
    },
    {
      root: '/sys/fs/cgroup',
      marker: 'cgroup.controllers',
      limit: 'memory.max',
      usage: 'memory.current'
    }
  ];
  for (const layout of layouts) {
    if (!existsSync(join(layout.root, layout.marker))) {
      continue;
    }
    const dir = join(layout.root, name);
    try {
      mkdirSync(dir);
      writeFileSync(join(dir, layout.limit), String(bytes));
    } catch {
      continue;
    }
    const procs = join(dir, 'cgroup.procs');
    return {
      dir,
      usage: () => Number(readFileSync(join(dir, layout.usage), 'utf8')),
      enter: argv => ['sh', '-c', `echo $$ > ${procs} && exec "$@"`, 'sh', ...argv],
      remove: async () => {
        for (let attempt = 0; attempt < 50; attempt++) {
          const pids = readFileSync(procs, 'utf8').split('\n').filter(Boolean);
          pids.forEach(pid => {
            try {
              process.kill(Number(pid), 'SIGKILL');
            } catch {
              // already gone
            }
          });
          try {
            rmdirSync(dir);
            return;
          } catch {
            await new Promise(done => setTimeout(done, 100));
          }
        }
        throw new Error(`cannot remove the test cgroup ${dir}`);
      }
    };
  }
  throw new Error('cannot create a memory cgroup: these tests need root and cgroup v1 or v2');
}

let sandbox: Sandbox;
const children: ChildProcess[] = [];
const connections: MessageConnection[] = [];
const cgroups: MemoryCgroup[] = [];

function spawnIn(cgroup: MemoryCgroup | undefined, argv: string[], env: NodeJS.ProcessEnv) {
  const [command, ...args] = cgroup ? cgroup.enter(argv) : argv;
  const child = spawn(command, args, { env: sandbox.env(env), stdio: ['pipe', 'pipe', 'pipe'] });
  children.push(child);
  return child;
}

/**
 * Python under the library inside `cgroup`, as a kernel unless `kernelId` is undefined;
 * resolves once it said "ready".
 */
async function python(
  cgroup: MemoryCgroup,
  script: string,
  kernelId: string | undefined
): Promise<ChildProcess> {
  const child = spawnIn(cgroup, [PYTHON, '-c', script], {
    LD_PRELOAD: LIBRARY,
    BIGMAAC_MIN_BIGMAAC_SIZE: '1M',
    ...(kernelId === undefined ? {} : { BIGMAAC_KERNEL_ID: kernelId })
  });
  await waitForOutput(child, 'ready', `python ${kernelId ?? '(not a kernel)'}`);
  return child;
}

function sleep(ms: number): Promise<void> {
  return new Promise(done => setTimeout(done, ms));
}

function kernelState(connection: MessageConnection, kernelId: string, state: string) {
  return connection.sendNotification('kernel/state', { kernelId, state });
}

/** The agent bundle (inside `cgroup` when given), initialized. */
async function agent(cgroup?: MemoryCgroup): Promise<MessageConnection> {
  const child = spawnIn(cgroup, [process.execPath, BUNDLE, 'agent'], {});
  const connection = createMessageConnection(
    new StreamMessageReader(child.stdout!),
    new StreamMessageWriter(child.stdin!)
  );
  connection.listen();
  connections.push(connection);
  await connection.sendRequest('initialize', INITIALIZE);
  return connection;
}

beforeAll(() => {
  requireArtifacts();
  sandbox = new Sandbox();
});

afterEach(async () => {
  connections.splice(0).forEach(c => c.dispose());
  children.splice(0).forEach(child => child.kill('SIGKILL'));
  await Promise.all(cgroups.splice(0).map(c => c.remove()));
});

afterAll(() => sandbox?.dispose());

describe('memory pressure', () => {
  it('pages out the idle kernel, not the busy one, until under the threshold', async () => {
    const cgroup = makeMemoryCgroup(640 * MiB);
    cgroups.push(cgroup);
    const connection = await agent(cgroup);
    const finished = recordNotifications<PageoutFinishedParams>(connection, 'pageout/finished');
    // Off while the kernels start: their states are not known yet.
    await connection.sendRequest('policy/set', {
      idlePageout: { enabled: false },
      pressure: { enabled: false }
    });
    const idle = await python(cgroup, allocatingScript(240 * MiB), 'jest-pressure-idle');
    const busy = await python(cgroup, allocatingScript(120 * MiB), 'jest-pressure-busy');
    await connection.sendNotification('kernel/state', {
      kernelId: 'jest-pressure-idle',
      state: 'idle',
      pid: idle.pid
    });
    await connection.sendNotification('kernel/state', {
      kernelId: 'jest-pressure-busy',
      state: 'busy',
      pid: busy.pid
    });
    const threshold = 0.5 * 640 * MiB;
    // Both kernels' memory is charged to the cgroup: over the threshold.
    expect(cgroup.usage()).toBeGreaterThan(threshold);
    // Nothing happened while the policy was off.
    await new Promise(done => setTimeout(done, 1500));
    expect(finished.received).toEqual([]);

    await connection.sendRequest('policy/set', {
      pressure: { enabled: true, thresholdPercent: 50 }
    });
    const notice = await finished.waitFor(p => p.pid === idle.pid);
    expect(notice).toMatchObject({ reason: 'pressure', ok: true, kernelId: 'jest-pressure-idle' });
    expect(notice.result?.residentBefore).toBeGreaterThanOrEqual(200 * MiB);
    expect(cgroup.usage()).toBeLessThan(threshold);
    // Under the threshold now, and the busy kernel was never a candidate.
    await new Promise(done => setTimeout(done, 3000));
    expect(finished.received.map(p => p.pid)).toEqual([idle.pid]);
  }, 60000);
});

describe('memory pressure order', () => {
  it('pages out idle kernels, most resident first, then other processes; never a busy one', async () => {
    const cgroup = makeMemoryCgroup(1024 * MiB);
    cgroups.push(cgroup);
    const connection = await agent(cgroup);
    const finished = recordNotifications<PageoutFinishedParams>(connection, 'pageout/finished');
    await connection.sendRequest('policy/set', {
      idlePageout: { enabled: false },
      pressure: { enabled: false }
    });
    // Started smallest first, so that neither pid order nor start order is the answer.
    const plain = await python(cgroup, allocatingScript(160 * MiB), undefined);
    const idleSmall = await python(cgroup, allocatingScript(100 * MiB), 'jest-order-small');
    const busy = await python(cgroup, allocatingScript(120 * MiB), 'jest-order-busy');
    const idleLarge = await python(cgroup, allocatingScript(220 * MiB), 'jest-order-large');
    await kernelState(connection, 'jest-order-small', 'idle');
    await kernelState(connection, 'jest-order-large', 'idle');
    await kernelState(connection, 'jest-order-busy', 'busy');
    // A threshold that the busy kernel alone keeps exceeded: every candidate goes.
    expect(cgroup.usage()).toBeGreaterThan(0.05 * 1024 * MiB);
    await connection.sendRequest('policy/set', {
      pressure: { enabled: true, thresholdPercent: 5 }
    });
    await finished.waitFor(p => p.pid === plain.pid);
    // Time for a wrong extra page-out (the busy kernel, or one twice) to show.
    await sleep(3000);
    expect(finished.received.map(p => [p.pid, p.reason, p.ok])).toEqual([
      [idleLarge.pid, 'pressure', true],
      [idleSmall.pid, 'pressure', true],
      [plain.pid, 'pressure', true]
    ]);
    expect(finished.received[2].kernelId).toBeUndefined();
    expect(finished.received[0].result?.residentBefore).toBeGreaterThanOrEqual(200 * MiB);
    // The busy kernel's memory is all still in RAM.
    const { process: details } = await connection.sendRequest<ProcessGetResult>('process/get', {
      pid: busy.pid
    });
    expect(details.residency?.resident).toBeGreaterThanOrEqual(120 * MiB);
  }, 90000);

  it('tries a kernel again after its pressure page-out failed', async () => {
    const cgroup = makeMemoryCgroup(640 * MiB);
    cgroups.push(cgroup);
    const connection = await agent(cgroup);
    const finished = recordNotifications<PageoutFinishedParams>(connection, 'pageout/finished');
    await connection.sendRequest('policy/set', {
      idlePageout: { enabled: false },
      pressure: { enabled: false }
    });
    const kernel = await python(cgroup, steppingScript(), 'jest-retry');
    const grow = async (mib: number) => {
      const grown = waitForOutput(kernel, 'grown', 'the stepping kernel');
      kernel.stdin!.write(`${mib}\n`);
      await grown;
    };
    await grow(160);
    await kernelState(connection, 'jest-retry', 'idle');
    // Stopped, the process cannot answer: the page-out fails after the library's 5 s.
    kernel.kill('SIGSTOP');
    try {
      await connection.sendRequest('policy/set', {
        pressure: { enabled: true, thresholdPercent: 10 }
      });
      await expect(finished.waitFor(p => p.pid === kernel.pid)).resolves.toMatchObject({
        reason: 'pressure',
        ok: false,
        error: { code: 'ETIMEDOUT' }
      });
    } finally {
      kernel.kill('SIGCONT');
    }
    // Continued, it may still serve the request it was sent; then it holds new memory.
    await grow(160);
    // Still idle, still over the threshold: tried again, and this time it works.
    await expect(finished.waitFor(p => p.pid === kernel.pid && p.ok)).resolves.toMatchObject({
      reason: 'pressure',
      kernelId: 'jest-retry'
    });
  }, 90000);
});

describe('OOM explanation', () => {
  it('says oom-killed for a process the cgroup OOM killer killed', async () => {
    const cgroup = makeMemoryCgroup(128 * MiB);
    cgroups.push(cgroup);
    const connection = await agent(); // outside the cgroup: it must survive
    const exited = recordNotifications<ProcessExitedParams>(connection, 'process/exited');
    await connection.sendRequest('stats/subscribe', { intervalMs: 100 });
    // A disk-backed allocation makes it a BigMaac process; then anonymous memory (blocks
    // under the threshold) beyond the limit, which no page-out can save.
    const script = [
      'import sys',
      'kept = bytearray(4 << 20)',
      'print("ready", flush=True)',
      'sys.stdin.readline()',
      'blocks = [bytearray(512 << 10) for _ in range(2048)]',
      'sys.stdin.read()'
    ].join('\n');
    const victim = await python(cgroup, script, 'jest-oom');
    const bystander = await python(cgroup, allocatingScript(4 * MiB), 'jest-sigkill');
    // Killed by us in the same cgroup before any OOM kill: killed, not oom-killed.
    await new Promise(done => setTimeout(done, 500));
    bystander.kill('SIGKILL');
    const killed = await exited.waitFor(p => p.pid === bystander.pid);
    expect(killed).toMatchObject({ cause: 'killed', kernelId: 'jest-sigkill' });
    expect(killed.detail).toMatch(/counted no OOM kill/);

    const died = new Promise(done => victim.on('exit', (code, signal) => done(signal)));
    victim.stdin!.write('go\n');
    await expect(died).resolves.toBe('SIGKILL');
    const notice = await exited.waitFor(p => p.pid === victim.pid);
    expect(notice).toMatchObject({ cause: 'oom-killed', kernelId: 'jest-oom' });
    expect(notice.detail).toContain(cgroup.dir);
  }, 60000);
});
