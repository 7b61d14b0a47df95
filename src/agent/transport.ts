/**
 * The agent's side of the stdio transport: a reader that lets through only JSON-RPC 2.0
 * messages, so that a body which is JSON but not a message (`[]`, `{}`, a request without
 * a method) is answered with -32600 instead of being dropped by vscode-jsonrpc in silence.
 */
import { DataCallback, Disposable, Message, StreamMessageReader } from 'vscode-jsonrpc/node';

/** The id to answer an invalid message with: its own when it has a usable one, else null. */
export type InvalidMessageHandler = (reason: string, id: number | string | null) => void;

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Why `message` is not a JSON-RPC 2.0 request, notification or response; undefined when it
 * is one. The same rules as the websocket proxy's (python/jupyterlab_bigmaac/proxy.py).
 */
export function invalidMessageReason(message: unknown): string | undefined {
  if (Array.isArray(message)) {
    return 'Invalid Request: batches are not supported';
  }
  if (!isObject(message)) {
    return 'Invalid Request: a message must be a JSON object';
  }
  if (message.jsonrpc !== '2.0') {
    return 'Invalid Request: "jsonrpc" must be "2.0"';
  }
  const { id, method } = message;
  const hasId = 'id' in message;
  if (hasId && id !== null && typeof id !== 'string' && typeof id !== 'number') {
    return 'Invalid Request: id must be a string, a number or null';
  }
  if ('method' in message) {
    if (typeof method !== 'string') {
      return 'Invalid Request: method must be a string';
    }
    // Only a response may have a null id; a request needs one it can be answered with.
    if (hasId && id === null) {
      return 'Invalid Request: a request needs a string or number id';
    }
    return undefined;
  }
  if (!('result' in message) && !('error' in message)) {
    return 'Invalid Request: no method';
  }
  return undefined;
}

/** StreamMessageReader that hands invalid messages to `onInvalid` instead of the connection. */
export class CheckedMessageReader extends StreamMessageReader {
  constructor(
    readable: NodeJS.ReadableStream,
    private readonly onInvalid: InvalidMessageHandler
  ) {
    super(readable);
  }

  listen(callback: DataCallback): Disposable {
    return super.listen((message: Message) => {
      const received: unknown = message;
      const reason = invalidMessageReason(received);
      if (reason === undefined) {
        callback(message);
        return;
      }
      const id = isObject(received) ? received.id : undefined;
      this.onInvalid(reason, typeof id === 'string' || typeof id === 'number' ? id : null);
    });
  }
}
