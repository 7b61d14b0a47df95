#!/usr/bin/env node
/**
 * Agent benchmark (issue 5's performance targets): a stats round for 50 processes, a
 * `process/get` with residency, and the agent's CPU and memory while idle (every process an
 * idle kernel under both policies) and while one client is subscribed.
 *
 *   node bench/agent.mjs [--processes 50] [--rounds 200] [--idle-seconds 10]
 *
 * Needs `make native addon agent` and .venv. Starts real Python processes under
 * libbigmaac.so in a private segment and swap directory, and the real agent bundle.
 * Prints medians and percentiles; nothing here is asserted by a test.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(join(ROOT, 'package.json'));
const rpc = require('vscode-jsonrpc/node');

const BUNDLE = join(ROOT, 'python', 'jupyterlab_bigmaac', '_bundled', 'bigmaac.js');
const LIBRARY = join(ROOT, 'native', 'build', 'libbigmaac.so');
const ADDON = join(ROOT, 'native', 'build', 'bigmaac.node');
const PYTHON = join(ROOT, '.venv', 'bin', 'python');
const TICKS_PER_SECOND = 100; // USER_HZ on Linux

const { values } = parseArgs({
  options: {
    processes: { type: 'string', default: '50' },
    rounds: { type: 'string', default: '200' },
    'idle-seconds': { type: 'string', default: '10' }
  }
});
const PROCESSES = Number(values.processes);
const ROUNDS = Number(values.rounds);
const IDLE_SECONDS = Number(values['idle-seconds']);

const root = mkdtempSync(join(tmpdir(), 'bigmaac-bench-agent-'));
const env = {
  ...process.env,
  BIGMAAC_SEGMENT_DIR: join(root, 'segments'),
  BIGMAAC_DIR: join(root, 'swap'),
  BIGMAAC_ADDON: ADDON
};
mkdirSync(env.BIGMAAC_SEGMENT_DIR, { mode: 0o700 });
mkdirSync(env.BIGMAAC_DIR, { mode: 0o700 });

/** A Python process with 2 MiB disk-backed, waiting for its stdin to close. */
function startProcess(index) {
  const script = 'import sys\na = bytearray(2 << 20)\nprint("ready", flush=True)\nsys.stdin.read()';
  const child = spawn(PYTHON, ['-c', script], {
    env: {
      ...env,
      LD_PRELOAD: LIBRARY,
      BIGMAAC_MIN_BIGMAAC_SIZE: '1M',
      BIGMAAC_LABEL: `bench-${index}`,
      BIGMAAC_KERNEL_ID: `bench-kernel-${index}`
    },
    stdio: ['pipe', 'pipe', 'inherit']
  });
  return new Promise((done, fail) => {
    child.stdout.once('data', () => done(child));
    child.once('exit', code => fail(new Error(`bench process ${index} exited (${code})`)));
  });
}

/** utime + stime of `pid`, seconds. */
function cpuSeconds(pid) {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND;
}

/** VmRSS and VmHWM of `pid`, MiB. */
function memoryMiB(pid) {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kib = name => Number(new RegExp(`${name}:\\s+(\\d+)`).exec(status)[1]);
  return { rss: kib('VmRSS') / 1024, peak: kib('VmHWM') / 1024 };
}

function percentile(sorted, p) {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

const sleep = ms => new Promise(done => setTimeout(done, ms));

async function main() {
  const children = [];
  for (let i = 0; i < PROCESSES; i++) {
    children.push(await startProcess(i));
  }
  const agent = spawn(process.execPath, [BUNDLE, 'agent'], {
    env,
    stdio: ['pipe', 'pipe', 'inherit']
  });
  const connection = rpc.createMessageConnection(
    new rpc.StreamMessageReader(agent.stdout),
    new rpc.StreamMessageWriter(agent.stdin)
  );
  connection.listen();
  try {
    await connection.sendRequest('initialize', { clientInfo: { name: 'bench' } });
    const listed = await connection.sendRequest('processes/list');
    if (listed.processes.length !== PROCESSES) {
      throw new Error(`the agent lists ${listed.processes.length} processes, not ${PROCESSES}`);
    }
    for (let i = 0; i < 20; i++) {
      await connection.sendRequest('processes/list'); // warm-up
    }
    const times = [];
    for (let i = 0; i < ROUNDS; i++) {
      const start = process.hrtime.bigint();
      await connection.sendRequest('processes/list');
      times.push(Number(process.hrtime.bigint() - start) / 1e6);
    }
    times.sort((a, b) => a - b);

    // process/get asks the process to measure its residency: one round trip into it.
    const getTimes = [];
    for (let i = 0; i < Math.min(ROUNDS, 100); i++) {
      const { pid } = listed.processes[i % listed.processes.length];
      const start = process.hrtime.bigint();
      await connection.sendRequest('process/get', { pid });
      getTimes.push(Number(process.hrtime.bigint() - start) / 1e6);
    }
    getTimes.sort((a, b) => a - b);

    // Every process an idle kernel, both policies on, nothing due: what an idle agent costs.
    await connection.sendRequest('policy/set', {
      idlePageout: { enabled: true, idleSeconds: 86400 },
      pressure: { enabled: true, thresholdPercent: 99 }
    });
    for (let i = 0; i < PROCESSES; i++) {
      await connection.sendNotification('kernel/state', {
        kernelId: `bench-kernel-${i}`,
        state: 'idle'
      });
    }

    const idleStart = cpuSeconds(agent.pid);
    await sleep(IDLE_SECONDS * 1000);
    const idleCpu = (cpuSeconds(agent.pid) - idleStart) / IDLE_SECONDS;

    let updates = 0;
    connection.onNotification('stats/update', () => (updates += 1));
    const { subscriptionId } = await connection.sendRequest('stats/subscribe', {
      intervalMs: 1000
    });
    const subscribedStart = cpuSeconds(agent.pid);
    await sleep(IDLE_SECONDS * 1000);
    const subscribedCpu = (cpuSeconds(agent.pid) - subscribedStart) / IDLE_SECONDS;
    await connection.sendRequest('stats/unsubscribe', { subscriptionId });
    const memory = memoryMiB(agent.pid);

    const row = (what, value, target) => console.log(`| ${what} | ${value} | ${target} |`);
    console.log(`Agent benchmark: ${PROCESSES} processes under libbigmaac.so, ${ROUNDS} rounds\n`);
    console.log('| measure | value | issue 5 target |');
    console.log('|---|---|---|');
    row('`processes/list` round trip, p50', `${percentile(times, 50).toFixed(2)} ms`, '< 20 ms');
    row('`processes/list` round trip, p95', `${percentile(times, 95).toFixed(2)} ms`, '< 20 ms');
    const getP50 = percentile(getTimes, 50).toFixed(2);
    row('`process/get` with residency, p50', `${getP50} ms`, '');
    const percent = share => `${(share * 100).toFixed(2)} %`;
    const idleWhat = `CPU, idle (background sampler, ${PROCESSES} idle kernels, both policies)`;
    row(`${idleWhat}, over ${IDLE_SECONDS} s`, percent(idleCpu), 'next to none');
    row(`CPU, subscribed at 1 s (${updates} updates)`, percent(subscribedCpu), '');
    const mib = `${memory.rss.toFixed(1)} / ${memory.peak.toFixed(1)} MiB`;
    row('memory (VmRSS now / VmHWM)', mib, '< 80 MiB');
    await connection.sendRequest('shutdown');
    await connection.sendNotification('exit');
  } finally {
    connection.dispose();
    agent.kill();
    for (const child of children) {
      child.stdin.end();
    }
    await Promise.all(children.map(child => new Promise(done => child.once('exit', done))));
    rmSync(root, { recursive: true, force: true });
  }
}

main().catch(error => {
  console.error(`bench/agent.mjs: ${error.message}`);
  process.exitCode = 1;
});
