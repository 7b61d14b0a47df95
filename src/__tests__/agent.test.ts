/**
 * The agent bundle over stdio against real processes under the preload library.
 */
import { spawn } from 'child_process';
import { rmSync, writeFileSync } from 'fs';
import { join } from 'path';
import { CancellationTokenSource } from 'vscode-jsonrpc/node';

import {
  ErrorCodes,
  InitializeResult,
  PageoutFinishedParams,
  PageoutProgress,
  PageoutResult,
  ProcessesListResult,
  ProcessGetResult,
  ProgressParams
} from '../common/protocol';
import {
  BUNDLE,
  INITIALIZE,
  MiB,
  recordNotifications,
  responseError,
  startBigProcess,
  startRawAgent,
  startVerifyingProcess,
  useTestBed
} from './helpers';

const bed = useTestBed({ big: { bytes: 64 * MiB } });
const { sandbox, agent, initializedAgent } = bed;

describe('lifecycle', () => {
  it('answers initialize with protocol version, capabilities and server info', async () => {
    const { connection } = agent();
    const result = await connection.sendRequest<InitializeResult>('initialize', INITIALIZE);
    expect(result.protocolVersion).toBe('1.1');
    expect(result.serverInfo.name).toBe('bigmaac-agent');
    expect(result.serverInfo.version).toMatch(/^\d+\.\d+\.\d+/);
    expect(result.capabilities.processesList).toBe(true);
    expect(result.capabilities.processGet).toBe(true);
    expect(result.capabilities.pageout).toEqual({
      supported: true,
      workDoneProgress: true,
      cancellable: true
    });
    expect(result.capabilities).toMatchObject({
      policy: true,
      kernelState: true,
      processExits: true,
      residency: true,
      pageoutFinished: true,
      policies: ['idlePageout', 'pressure']
    });
  });

  it('refuses requests before initialize with -32002', async () => {
    const { connection } = agent();
    const error = await responseError(connection.sendRequest('processes/list'));
    expect(error.code).toBe(ErrorCodes.NotInitialized);
    expect(error.message).toMatch(/initialize/);
    // The agent is still there and initializes afterwards.
    await expect(connection.sendRequest('initialize', INITIALIZE)).resolves.toHaveProperty(
      'protocolVersion'
    );
  });

  it('answers an unknown method with -32601 and keeps running', async () => {
    const { connection } = await initializedAgent();
    const error = await responseError(connection.sendRequest('no/such/method', {}));
    expect(error.code).toBe(ErrorCodes.MethodNotFound);
    await expect(connection.sendRequest('processes/list')).resolves.toHaveProperty('processes');
  });

  it('ends with exit code 0 after shutdown and exit', async () => {
    const started = await initializedAgent();
    await expect(started.connection.sendRequest('shutdown')).resolves.toBeNull();
    const error = await responseError(started.connection.sendRequest('processes/list'));
    expect(error.code).toBe(ErrorCodes.InvalidRequest);
    await started.connection.sendNotification('exit');
    await expect(started.exited).resolves.toEqual({ code: 0, signal: null });
  });

  it('ends with exit code 1 on exit without shutdown', async () => {
    const started = await initializedAgent();
    await started.connection.sendNotification('exit');
    await expect(started.exited).resolves.toEqual({ code: 1, signal: null });
  });

  it('exits when its parent process is gone', async () => {
    const parent = spawn('sleep', ['60']);
    const started = agent(['--parent-pid', String(parent.pid)]);
    await started.connection.sendRequest('initialize', INITIALIZE);
    parent.kill('SIGKILL');
    const { code } = await started.exited;
    expect(code).toBe(1);
    expect(started.stderr()).toMatch(/parent process \d+ is gone/);
  });

  it('writes nothing but Content-Length framed messages on stdout', async () => {
    const raw = spawn(process.execPath, [BUNDLE, 'agent'], {
      env: sandbox.env(),
      stdio: ['pipe', 'pipe', 'pipe']
    });
    const chunks: Buffer[] = [];
    raw.stdout.on('data', (chunk: Buffer) => chunks.push(chunk));
    const frame = (body: string) => `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
    // Malformed JSON first: the agent must survive it and answer what follows.
    raw.stdin.write(frame('{"jsonrpc": "2.0", "id": 0, "method": '));
    const initialize = { jsonrpc: '2.0', id: 1, method: 'initialize', params: {} };
    raw.stdin.write(frame(JSON.stringify(initialize)));
    raw.stdin.write(frame(JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'shutdown' })));
    raw.stdin.write(frame(JSON.stringify({ jsonrpc: '2.0', method: 'exit' })));
    const code = await new Promise(done => raw.on('exit', done));
    expect(code).toBe(0);
    const messages: { id: number | null; result?: unknown; error?: { code: number } }[] = [];
    let rest = Buffer.concat(chunks);
    while (rest.length > 0) {
      const header = /^Content-Length: (\d+)\r\n\r\n/.exec(rest.toString('latin1'));
      expect(header).not.toBeNull();
      const start = header![0].length;
      const end = start + Number(header![1]);
      messages.push(JSON.parse(rest.subarray(start, end).toString('utf8')));
      rest = rest.subarray(end);
    }
    // The malformed body is answered with a parse error and a null id (JSON-RPC 2.0).
    expect(messages.map(m => m.id)).toEqual([null, 1, 2]);
    expect(messages[0].error?.code).toBe(ErrorCodes.ParseError);
    expect(messages[1].result).toHaveProperty('serverInfo');
  });
});

describe('bad messages on stdio', () => {
  it('answers JSON that is not a JSON-RPC message with -32600, and reads on', async () => {
    const raw = startRawAgent(sandbox);
    const bodies = [
      '[]',
      '{}',
      '{"jsonrpc":"2.0"}',
      '[{"jsonrpc":"2.0","id":5,"method":"processes/list"}]',
      '{"jsonrpc":"1.0","id":6,"method":"initialize"}',
      '{"jsonrpc":"2.0","id":7,"method":5}',
      '{"jsonrpc":"2.0","id":null,"method":"initialize"}',
      '{"jsonrpc":"2.0","id":{"a":1},"method":"initialize"}',
      '42'
    ];
    bodies.forEach(body => raw.send(body));
    raw.send({ jsonrpc: '2.0', id: 1, method: 'initialize', params: {} });
    await raw.waitFor(m => m.id === 1);
    // One answer per bad body, in order, each naming what is wrong; then initialize's.
    expect(raw.messages.map(m => [m.id, m.error?.code])).toEqual([
      [null, ErrorCodes.InvalidRequest],
      [null, ErrorCodes.InvalidRequest],
      [null, ErrorCodes.InvalidRequest],
      [null, ErrorCodes.InvalidRequest],
      [6, ErrorCodes.InvalidRequest],
      [7, ErrorCodes.InvalidRequest],
      [null, ErrorCodes.InvalidRequest],
      [null, ErrorCodes.InvalidRequest],
      [null, ErrorCodes.InvalidRequest],
      [1, undefined]
    ]);
    expect(raw.messages.slice(0, 9).map(m => m.error?.message)).toEqual([
      'Invalid Request: batches are not supported',
      'Invalid Request: "jsonrpc" must be "2.0"',
      'Invalid Request: no method',
      'Invalid Request: batches are not supported',
      'Invalid Request: "jsonrpc" must be "2.0"',
      'Invalid Request: method must be a string',
      'Invalid Request: a request needs a string or number id',
      'Invalid Request: id must be a string, a number or null',
      'Invalid Request: a message must be a JSON object'
    ]);
    expect(raw.messages[9].result).toHaveProperty('serverInfo');
    // The first `initialize` that was valid is the one that counted: none of the bad
    // ones reached the handler, so this second one is refused as a second initialize.
    raw.send({ jsonrpc: '2.0', id: 2, method: 'initialize', params: {} });
    await expect(raw.waitFor(m => m.id === 2)).resolves.toMatchObject({
      error: { code: ErrorCodes.InvalidRequest, message: 'initialize may be sent only once' }
    });
    raw.send({ jsonrpc: '2.0', id: 3, method: 'shutdown' });
    raw.send({ jsonrpc: '2.0', method: 'exit' });
    await expect(raw.exited).resolves.toEqual({ code: 0, signal: null });
    expect(raw.stderr()).toMatch(/bad message: Invalid Request: batches are not supported/);
  });

  it('leaves quietly when its client stops reading, without a crash or a parse error', async () => {
    const raw = startRawAgent(sandbox);
    raw.send({ jsonrpc: '2.0', id: 1, method: 'initialize', params: {} });
    raw.send({ jsonrpc: '2.0', id: 2, method: 'stats/subscribe', params: { intervalMs: 100 } });
    await raw.waitFor(m => m.id === 2);
    // The reading end of the agent's stdout goes away, as when its parent dies: the next
    // stats/update fails with EPIPE.
    raw.child.stdout!.destroy();
    await expect(raw.exited).resolves.toEqual({ code: 1, signal: null });
    const stderr = raw.stderr();
    expect(stderr).toMatch(/cannot write to the client: .*EPIPE/);
    // Neither a crash on an unhandled rejection nor an answer to a "bad message".
    expect(stderr).not.toMatch(/Unhandled|triggerUncaughtException|bad message|Parse error/);
  });
});

describe('a broken stderr', () => {
  it('does not stop the agent from answering and exiting as told', async () => {
    const raw = startRawAgent(sandbox);
    raw.send({ jsonrpc: '2.0', id: 1, method: 'initialize', params: {} });
    raw.send({ jsonrpc: '2.0', id: 2, method: 'shutdown' });
    await raw.waitFor(m => m.id === 2);
    // Nobody reads its stderr any more; the next log line there fails with EPIPE.
    raw.child.stderr!.destroy();
    raw.send('{"jsonrpc": "2.0", "id": 3,');
    const died = raw.exited.then(how => {
      throw new Error(`the agent died (${JSON.stringify(how)}) instead of answering`);
    });
    died.catch(() => undefined); // it rejects at the normal exit too, after the race
    const answer = raw.waitFor(m => m.error?.code === ErrorCodes.ParseError);
    await expect(Promise.race([answer, died])).resolves.toHaveProperty('id', null);
    raw.send({ jsonrpc: '2.0', method: 'exit' });
    // 0: it lived to hear `exit` after `shutdown`; a crash on the EPIPE would be 1.
    await expect(raw.exited).resolves.toEqual({ code: 0, signal: null });
  });
});

describe('processes/list', () => {
  it('reports the process under the library with its disk-backed memory', async () => {
    const { connection } = await initializedAgent();
    const { processes } = await connection.sendRequest<ProcessesListResult>('processes/list');
    const info = processes.find(p => p.pid === bed.big.pid);
    expect(info).toBeDefined();
    expect(info!.diskBacked.bytes).toBeGreaterThanOrEqual(64 * MiB);
    expect(info!.diskBacked.count).toBeGreaterThanOrEqual(1);
    expect(info!.peakBytes).toBeGreaterThanOrEqual(info!.diskBacked.bytes);
    expect(info!.kernelId).toBe('jest-kernel-0001');
    expect(info!.label).toBe('jest');
    expect(info!.command).toContain('python');
    expect(info!.uid).toBe(process.getuid!());
    expect(info!.swapDir).toBe(sandbox.swapDir);
    expect(Math.abs(Date.now() - info!.updatedAt)).toBeLessThan(10 * 60 * 1000);
  });

  it('answers -32603 naming the missing addon, and keeps running', async () => {
    const started = agent([], { BIGMAAC_ADDON: '/nonexistent/bigmaac.node' });
    await started.connection.sendRequest('initialize', INITIALIZE);
    const error = await responseError(started.connection.sendRequest('processes/list'));
    expect(error.code).toBe(ErrorCodes.InternalError);
    expect(error.message).toMatch(/addon is missing \(looked for \/nonexistent\/bigmaac.node\)/);
    await expect(started.connection.sendRequest('shutdown')).resolves.toBeNull();
  });

  it('no longer reports a process once it has exited', async () => {
    const short = await startBigProcess(sandbox, 8 * MiB, 'jest-kernel-short');
    const { connection } = await initializedAgent();
    let list = await connection.sendRequest<ProcessesListResult>('processes/list');
    expect(list.processes.map(p => p.pid)).toContain(short.pid);
    await short.stop();
    list = await connection.sendRequest<ProcessesListResult>('processes/list');
    expect(list.processes.map(p => p.pid)).not.toContain(short.pid);
  });
});

describe('process/get', () => {
  it('reports the process with its counters and allocations', async () => {
    const { connection } = await initializedAgent();
    const { process: details } = await connection.sendRequest<ProcessGetResult>('process/get', {
      pid: bed.big.pid
    });
    expect(details.pid).toBe(bed.big.pid);
    expect(details.kernelId).toBe('jest-kernel-0001');
    expect(details.minBigSize).toBe(MiB);
    expect(details.counters.liveBigBytes).toBeGreaterThanOrEqual(64 * MiB);
    expect(details.counters.allocs).toBeGreaterThanOrEqual(details.allocationsTotal);
    expect(details.allocations.length).toBe(Math.min(details.allocationsTotal, 1024));
    const largest = details.allocations[0];
    expect(largest.size).toBeGreaterThanOrEqual(64 * MiB);
    expect(largest.tier).toBe('big');
    expect(largest.address % 4096).toBe(0);
    // Every page was dirtied at start and nothing paged out yet: all of it is in RAM,
    // measured by the process on this request.
    expect(details.residency?.resident).toBeGreaterThanOrEqual(64 * MiB);
    expect(details.residency?.resident).toBeLessThanOrEqual(details.diskBacked.bytes);
    expect(details.residency?.measuredAt).toBeGreaterThan(Date.now() - 60000);
    expect(largest.resident).toBeGreaterThanOrEqual(64 * MiB);
    expect(largest.dirty).toBeLessThanOrEqual(largest.resident as number);
  });

  it('answers an unknown pid with -32100', async () => {
    const { connection } = await initializedAgent();
    const error = await responseError(connection.sendRequest('process/get', { pid: process.pid }));
    expect(error.code).toBe(ErrorCodes.UnknownProcess);
  });
});

describe('process/pageout', () => {
  it('pages the process out and reports progress under the token', async () => {
    const target = await startVerifyingProcess(sandbox, 96 * MiB, 'jest-kernel-progress');
    try {
      const { connection } = await initializedAgent();
      const progress = recordNotifications<ProgressParams<PageoutProgress>>(
        connection,
        '$/progress'
      );
      const finished = recordNotifications<PageoutFinishedParams>(connection, 'pageout/finished');
      // Stopped, the process cannot start the page-out: the agent reports while it waits,
      // so there is a `report` between `begin` and `end` however fast the disk is.
      target.child.kill('SIGSTOP');
      let result: Promise<PageoutResult>;
      try {
        result = connection.sendRequest<PageoutResult>('process/pageout', {
          pid: target.pid,
          workDoneToken: 'jest-token'
        });
        await progress.waitFor(p => p.token === 'jest-token' && p.value.kind === 'report');
      } finally {
        target.child.kill('SIGCONT');
      }
      const answer = await result;
      await progress.waitFor(p => p.token === 'jest-token' && p.value.kind === 'end');
      const values = progress.received.filter(p => p.token === 'jest-token').map(p => p.value);
      expect(values[0]).toMatchObject({ kind: 'begin', cancellable: true, percentage: 0 });
      expect(values[values.length - 1]).toEqual({
        kind: 'end',
        message: `paged out ${answer.bytesWritten} bytes`
      });
      const reports = values.slice(1, -1);
      expect(reports.length).toBeGreaterThanOrEqual(1);
      for (const report of reports) {
        expect(report.kind).toBe('report');
        if (report.kind === 'report') {
          expect(report.bytesDone).toBeLessThanOrEqual(Math.max(report.bytesTotal, 0));
          expect(report.percentage).toBeGreaterThanOrEqual(0);
          expect(report.percentage).toBeLessThanOrEqual(100);
        }
      }
      // Every client hears of it, with the reason and the same figures.
      const notice = await finished.waitFor(params => params.pid === target.pid);
      expect(notice).toMatchObject({ reason: 'request', ok: true, kernelId: 'jest-kernel-progress' });
      expect(notice.result?.bytesWritten).toBe(answer.bytesWritten);
      expect(answer.pid).toBe(target.pid);
      expect(answer.residentBefore).toBeGreaterThanOrEqual(96 * MiB);
      expect(answer.residentAfter).toBeLessThan(answer.residentBefore / 2);
      expect(answer.durationMs).toBeGreaterThanOrEqual(0);
      // The process's data survived, and it is still listed with its memory.
      await expect(target.check()).resolves.toBe('intact');
      const { processes } = await connection.sendRequest<ProcessesListResult>('processes/list');
      const after = processes.find(p => p.pid === target.pid);
      expect(after?.diskBacked.bytes).toBeGreaterThanOrEqual(96 * MiB);
    } finally {
      await target.stop();
    }
  });

  it('cancels a page-out with -32800, leaving the data in RAM and intact', async () => {
    const target = await startVerifyingProcess(sandbox, 64 * MiB, 'jest-kernel-cancel');
    try {
      const { connection } = await initializedAgent();
      const progress = recordNotifications<ProgressParams<PageoutProgress>>(
        connection,
        '$/progress'
      );
      const source = new CancellationTokenSource();
      // Stopped, the process cannot start the page-out before the cancel reaches it.
      target.child.kill('SIGSTOP');
      let error: Promise<{ code: number; data?: { code?: string } }>;
      try {
        error = responseError(
          connection.sendRequest<PageoutResult>(
            'process/pageout',
            { pid: target.pid, workDoneToken: 'cancel-token' },
            source.token
          )
        );
        // `begin` goes out once the page-out is under way in the agent.
        await progress.waitFor(p => p.token === 'cancel-token' && p.value.kind === 'begin');
        source.cancel();
        // The agent handles messages in order: once this is answered, the cancel was seen.
        await connection.sendRequest('processes/list');
        // The addon forwards the cancel to the process at its next 100 ms wait, after which
        // it reports again: two more reports and the cancel is in the process's segment.
        const seen = progress.received.length;
        await progress.waitFor(p => p.token === 'cancel-token' && p.value.kind === 'report', seen);
        await progress.waitFor(
          p => p.token === 'cancel-token' && p.value.kind === 'report',
          progress.received.length
        );
      } finally {
        target.child.kill('SIGCONT');
      }
      await expect(error).resolves.toMatchObject({
        code: ErrorCodes.RequestCancelled,
        data: { code: 'ECANCELLED' }
      });
      await expect(
        progress.waitFor(p => p.token === 'cancel-token' && p.value.kind === 'end')
      ).resolves.toMatchObject({ value: { message: 'page-out cancelled' } });
      // Nothing was paged out, and the data is what the process wrote.
      const { process: details } = await connection.sendRequest<ProcessGetResult>(
        'process/get',
        { pid: target.pid }
      );
      expect(details.residency?.resident).toBeGreaterThanOrEqual(64 * MiB);
      await expect(target.check()).resolves.toBe('intact');
      // The agent stays usable: the next page-out of the same process completes.
      await expect(
        connection.sendRequest<PageoutResult>('process/pageout', { pid: target.pid })
      ).resolves.toHaveProperty('pid', target.pid);
      await expect(target.check()).resolves.toBe('intact');
    } finally {
      await target.stop();
    }
  });

  it('answers a second page-out of the same process with -32103 while the first runs', async () => {
    const dirty = await startBigProcess(sandbox, 64 * MiB, 'jest-kernel-busy');
    try {
      const { connection } = await initializedAgent();
      const first = connection.sendRequest<PageoutResult>('process/pageout', { pid: dirty.pid });
      const second = responseError(connection.sendRequest('process/pageout', { pid: dirty.pid }));
      const error = await second;
      expect(error.code).toBe(ErrorCodes.PageoutRunning);
      expect(error.data?.code).toBe('EBUSY_PAGEOUT');
      await expect(first).resolves.toHaveProperty('pid', dirty.pid);
    } finally {
      await dirty.stop();
    }
  });

  it('answers an unknown pid with -32100', async () => {
    const { connection } = await initializedAgent();
    // Our own pid is alive but not under the library.
    const request = connection.sendRequest('process/pageout', { pid: process.pid });
    const error = await responseError(request);
    expect(error.code).toBe(ErrorCodes.UnknownProcess);
    expect(error.data?.code).toBe('ENOENT_PROCESS');
    expect(error.message).toContain(String(process.pid));
  });

  it('answers a segment of another layout version with -32102 and keeps listing', async () => {
    const { connection } = await initializedAgent();
    const segment = Buffer.alloc(64);
    segment.writeBigUInt64LE(0x31474553434d4742n, 0); // the magic, then version 99
    segment.writeUInt32LE(99, 8);
    const pid = 4000321;
    writeFileSync(join(sandbox.segmentDir, `${pid}.seg`), segment, { mode: 0o600 });
    try {
      const error = await responseError(connection.sendRequest('process/pageout', { pid }));
      expect(error.code).toBe(ErrorCodes.IncompatibleSegment);
      expect(error.data?.code).toBe('EINCOMPATIBLE');
      expect(error.message).toMatch(/another layout version/);
      const { processes } = await connection.sendRequest<ProcessesListResult>('processes/list');
      expect(processes.map(p => p.pid)).toContain(bed.big.pid);
      expect(processes.map(p => p.pid)).not.toContain(pid);
    } finally {
      rmSync(join(sandbox.segmentDir, `${pid}.seg`), { force: true });
    }
  });

  it('answers a malformed pid with -32602', async () => {
    const { connection } = await initializedAgent();
    for (const pid of ['12', -1, 1.5, null]) {
      const error = await responseError(connection.sendRequest('process/pageout', { pid }));
      expect(error.code).toBe(ErrorCodes.InvalidParams);
      expect(error.message).toMatch(/pid must be/);
    }
  });
});
