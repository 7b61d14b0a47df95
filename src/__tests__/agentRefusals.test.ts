/**
 * Bad input the agent must refuse with the documented error and survive: a body that is
 * not JSON, and another user's process.
 */
import { spawn } from 'child_process';

import { ErrorCodes, ProcessesListResult, ProcessGetResult } from '../common/protocol';
import {
  AgentProcess,
  BUNDLE,
  frame,
  initialize,
  INITIALIZE,
  MiB,
  responseError,
  useTestBed
} from './helpers';

/** The uid the "other user" agent runs as (Debian's nobody). */
const NOBODY = 65534;

const bed = useTestBed({ big: { bytes: 64 * MiB } });
const { sandbox, agent } = bed;

/** Raw frames in, raw bodies out: what a client that sends garbage sees. */
function rawExchange(bodies: string[], expected: number): Promise<unknown[]> {
  const child = spawn(process.execPath, [BUNDLE, 'agent'], {
    env: sandbox.env(),
    stdio: ['pipe', 'pipe', 'pipe']
  });
  return new Promise((resolve, reject) => {
    let buffered = '';
    const answers: unknown[] = [];
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`only ${answers.length} of ${expected} answers: ${buffered}`));
    }, 20000);
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (chunk: string) => {
      buffered += chunk;
      for (;;) {
        const header = /^Content-Length: (\d+)\r\n\r\n/.exec(buffered);
        if (!header || buffered.length < header[0].length + Number(header[1])) {
          break;
        }
        const end = header[0].length + Number(header[1]);
        answers.push(JSON.parse(buffered.slice(header[0].length, end)));
        buffered = buffered.slice(end);
      }
      if (answers.length >= expected) {
        clearTimeout(timer);
        child.stdin.end();
        resolve(answers);
      }
    });
    child.stdin.write(bodies.map(frame).join(''));
  });
}

describe('the agent refuses bad input and keeps running', () => {
  it('answers a body that is not JSON with -32700 and a null id, then serves the next request', async () => {
    const initializeRequest = JSON.stringify({
      jsonrpc: '2.0',
      id: 1,
      method: 'initialize',
      params: INITIALIZE
    });
    const answers = (await rawExchange(['{"jsonrpc": "2.0", "id": 7,', initializeRequest], 2)) as {
      id: number | null;
      error?: { code: number; message: string };
      result?: { protocolVersion: string };
    }[];
    expect(answers[0].id).toBeNull();
    expect(answers[0].error?.code).toBe(ErrorCodes.ParseError);
    expect(answers[0].error?.message).toMatch(/^Parse error: /);
    expect(answers[1].id).toBe(1);
    expect(answers[1].result?.protocolVersion).toMatch(/^\d+\.\d+$/);
  });

  const asRoot = process.getuid?.() === 0;
  (asRoot ? it : it.skip)(
    "refuses another user's process with -32101 and leaves it untouched",
    async () => {
      // The agent runs as nobody; the process under the library belongs to root.
      const started = agentAs(NOBODY);
      const { connection } = await initialize(started);
      for (const method of ['process/get', 'process/pageout']) {
        const error = await responseError(connection.sendRequest(method, { pid: bed.big.pid }));
        expect(error.code).toBe(ErrorCodes.PermissionDenied);
        expect(error.data?.code).toBe('EPERM');
      }
      // The owner's segment directory is closed to others: listing it is refused too.
      const listing = await responseError(
        connection.sendRequest<ProcessesListResult>('processes/list')
      );
      expect(listing.code).toBe(ErrorCodes.PermissionDenied);
      // Still serving, and the owner's data was never paged out by the other user.
      expect(started.child.exitCode).toBeNull();
      const owner = agent();
      const ownerConnection = (await initialize(owner)).connection;
      const { process: details } = await ownerConnection.sendRequest<ProcessGetResult>(
        'process/get',
        { pid: bed.big.pid }
      );
      expect(details.counters.pageouts).toBe(0);
    }
  );
});

/** An agent as another uid (root only), stopped after the test. */
function agentAs(uid: number): AgentProcess {
  return agent([], {}, { uid, gid: uid });
}
