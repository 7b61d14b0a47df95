/**
 * The panel's websocket JSON-RPC client, against a real websocket server on
 * localhost that speaks the agent protocol's framing (one message per frame)
 * and checks the token the way jupyter_server does for websockets.
 */
import { ServerConnection } from '@jupyterlab/services';
import type { AddressInfo } from 'net';

import { Methods } from '../common/protocol';
import {
  AgentClient,
  AgentError,
  IAgentNotification
} from '../panel/agentClient';

// `ws` comes with jest's jsdom environment; its types are not installed.
// eslint-disable-next-line @typescript-eslint/no-var-requires
const WS = require('ws');

const TOKEN = 'secret token/+';

interface IPeer {
  server: any;
  port: number;
  sockets: any[];
  received: any[];
  connections: number;
  /** Answers of requests waiting for `$/cancelRequest`, by id. */
  cancellable: Map<number, () => void>;
}

/** A websocket server answering JSON-RPC like the server's agent proxy. */
async function startPeer(): Promise<IPeer> {
  const peer: IPeer = {
    server: null,
    port: 0,
    sockets: [],
    received: [],
    connections: 0,
    cancellable: new Map()
  };
  peer.server = new WS.WebSocketServer({
    port: 0,
    host: '127.0.0.1',
    verifyClient: (info: any) => {
      const url = new URL(info.req.url, 'http://localhost');
      return (
        url.pathname === '/bigmaac/agent' &&
        url.searchParams.get('token') === TOKEN
      );
    }
  });
  peer.server.on('connection', (socket: any) => {
    peer.connections++;
    peer.sockets.push(socket);
    socket.on('message', (data: Buffer) => {
      const message = JSON.parse(data.toString());
      peer.received.push(message);
      if (message.method === Methods.cancelRequest) {
        peer.cancellable.get(message.params.id)?.();
        return;
      }
      if (message.id === undefined) {
        return;
      }
      const answer = (result: unknown) =>
        socket.send(JSON.stringify({ jsonrpc: '2.0', id: message.id, result }));
      switch (message.method) {
        case Methods.initialize:
          answer({
            protocolVersion: '1.0',
            capabilities: {},
            serverInfo: { name: 'peer', version: '0' }
          });
          break;
        case 'echo':
          socket.send(
            JSON.stringify({
              jsonrpc: '2.0',
              method: 'note',
              params: message.params
            })
          );
          answer(message.params);
          break;
        case 'silent':
          break;
        case 'cancellable':
          // Answers only when cancelled, as the agent does for a page-out.
          peer.cancellable.set(message.id, () =>
            socket.send(
              JSON.stringify({
                jsonrpc: '2.0',
                id: message.id,
                error: {
                  code: -32800,
                  message: 'cancelled',
                  data: { code: 'ECANCELLED' }
                }
              })
            )
          );
          break;
        default:
          socket.send(
            JSON.stringify({
              jsonrpc: '2.0',
              id: message.id,
              error: {
                code: -32100,
                message: 'no BigMaac process with pid 1',
                data: { code: 'ENOENT_PROCESS' }
              }
            })
          );
      }
    });
  });
  await new Promise(resolve => peer.server.on('listening', resolve));
  peer.port = (peer.server.address() as AddressInfo).port;
  return peer;
}

/** The error a request failed with; fails the test if it succeeded. */
async function failure(request: Promise<unknown>): Promise<AgentError> {
  try {
    await request;
  } catch (error) {
    return error as AgentError;
  }
  throw new Error('the request succeeded');
}

function settings(port: number, token = TOKEN): ServerConnection.ISettings {
  return ServerConnection.makeSettings({
    baseUrl: `http://127.0.0.1:${port}/`,
    wsUrl: `ws://127.0.0.1:${port}/`,
    token,
    appendToken: true,
    WebSocket: WS
  });
}

describe('AgentClient', () => {
  let peer: IPeer;
  let client: AgentClient;

  beforeEach(async () => {
    peer = await startPeer();
  });

  afterEach(async () => {
    client?.dispose();
    await new Promise(resolve => peer.server.close(resolve));
    for (const socket of peer.sockets) {
      socket.terminate();
    }
  });

  it('builds the websocket URL with the token, as JupyterLab does for kernels', () => {
    client = new AgentClient({ serverSettings: settings(peer.port) });
    expect(client.url).toBe(
      `ws://127.0.0.1:${peer.port}/bigmaac/agent?token=${encodeURIComponent(TOKEN)}`
    );
  });

  it('initializes on connection, then matches answers to requests', async () => {
    client = new AgentClient({ serverSettings: settings(peer.port) });
    const notes: IAgentNotification[] = [];
    client.notificationReceived.connect((_, note) => notes.push(note));

    const [a, b] = await Promise.all([
      client.request('echo', { n: 1 }),
      client.request('echo', { n: 2 })
    ]);
    expect(a).toEqual({ n: 1 });
    expect(b).toEqual({ n: 2 });
    expect(client.status).toBe('connected');
    expect(client.serverInfo?.serverInfo.name).toBe('peer');
    expect(peer.received[0].method).toBe(Methods.initialize);
    expect(peer.received[1]).toEqual({
      jsonrpc: '2.0',
      method: Methods.initialized,
      params: {}
    });
    expect(notes).toEqual([
      { method: 'note', params: { n: 1 } },
      { method: 'note', params: { n: 2 } }
    ]);
  });

  it('rejects with the agent error code', async () => {
    client = new AgentClient({ serverSettings: settings(peer.port) });
    const error = await failure(client.request('process/pageout', { pid: 1 }));
    expect(error.name).toBe('AgentError');
    expect(error.rpcCode).toBe(-32100);
    expect(error.code).toBe('ENOENT_PROCESS');
    expect(error.message).toBe('no BigMaac process with pid 1');
  });

  it('fails pending requests when the connection drops, then reconnects', async () => {
    client = new AgentClient({
      serverSettings: settings(peer.port),
      maxBackoff: 200
    });
    await client.request('echo', 1);
    const pending = failure(client.request('silent'));
    await new Promise(resolve => setTimeout(resolve, 50));
    peer.sockets[0].close(1011, 'agent restarted');
    const error = await pending;
    expect(error.code).toBe('ECONNECTION');
    expect(error.message).toContain('agent restarted');

    // A request during the back-off fails at once; after it the client is back.
    await expect(client.request('echo', 2)).rejects.toThrow(
      'not connected: the connection closed: agent restarted (code 1011)'
    );
    await new Promise(resolve => setTimeout(resolve, 700));
    expect(client.status).toBe('connected');
    await expect(client.request('echo', 3)).resolves.toBe(3);
    expect(peer.connections).toBe(2);
  });

  it('is refused without the token', async () => {
    client = new AgentClient({
      serverSettings: settings(peer.port, 'wrong'),
      maxBackoff: 60_000
    });
    const error = await failure(client.request('echo', 1));
    expect(error.code).toBe('ECONNECTION');
    expect(client.status).toBe('closed');
    expect(peer.connections).toBe(0);
  });

  it('times out a request the agent never answers', async () => {
    client = new AgentClient({
      serverSettings: settings(peer.port),
      requestTimeout: 100
    });
    const error = await failure(client.request('silent'));
    expect(error.code).toBe('ETIMEOUT');
  });

  it('sends $/cancelRequest with the request id when its signal aborts', async () => {
    client = new AgentClient({ serverSettings: settings(peer.port) });
    await client.request('echo', 0);
    const abort = new AbortController();
    const pending = failure(
      client.request('cancellable', { pid: 1 }, { signal: abort.signal })
    );
    await new Promise(resolve => setTimeout(resolve, 50));
    abort.abort();
    const error = await pending;
    expect(error.rpcCode).toBe(-32800);
    expect(error.code).toBe('ECANCELLED');
    const request = peer.received.find(m => m.method === 'cancellable');
    const cancel = peer.received.find(m => m.method === Methods.cancelRequest);
    expect(cancel).toEqual({
      jsonrpc: '2.0',
      method: Methods.cancelRequest,
      params: { id: request.id }
    });
  });
});
