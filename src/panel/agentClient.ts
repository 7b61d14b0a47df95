/**
 * A JSON-RPC 2.0 client for the BigMaac agent, over the server's websocket
 * `/bigmaac/agent` (one JSON-RPC message per text frame).
 *
 * It connects lazily, sends `initialize` on every (re)connection, keeps one
 * promise per request id, and reconnects with exponential backoff when the
 * socket closes. Requests made while disconnected wait for the next connection.
 */

import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';
import { PromiseDelegate } from '@lumino/coreutils';
import { IDisposable } from '@lumino/disposable';
import { ISignal, Signal } from '@lumino/signaling';

import {
  ErrorCodes,
  ErrorName,
  InitializeResult,
  Methods,
  PROTOCOL_VERSION
} from '../common/protocol';

/** The websocket path of the agent, relative to the server's base URL. */
export const AGENT_WS_PATH = 'bigmaac/agent';

/** Connection states, in the order a healthy client goes through them. */
export type ConnectionStatus = 'idle' | 'connecting' | 'connected' | 'closed';

/** A JSON-RPC notification received from the agent. */
export interface IAgentNotification {
  method: string;
  params?: unknown;
}

/** Options of one request. */
export interface IRequestOptions {
  /** Milliseconds before the request is rejected; 0 waits for ever. */
  timeout?: number;
  /**
   * Aborting it sends `$/cancelRequest` for the request; the agent then
   * answers with error -32800 (or the result, if it had already finished).
   */
  signal?: AbortSignal;
}

/** An error answered by the agent, or a transport failure (code `ECONNECTION`). */
export class AgentError extends Error {
  constructor(
    message: string,
    readonly rpcCode: number,
    readonly code: ErrorName | 'ECONNECTION' | 'ETIMEOUT'
  ) {
    super(message);
    this.name = 'AgentError';
  }
}

/** `WebSocket.OPEN`, spelled out so any WebSocket implementation works. */
const OPEN = 1;

/** The JSON-RPC error code the client uses for transport failures (not sent by the agent). */
export const CONNECTION_ERROR = -32099;

interface IPending {
  method: string;
  delegate: PromiseDelegate<any>;
  timer: ReturnType<typeof setTimeout> | null;
}

/**
 * A reconnecting JSON-RPC client of the BigMaac agent.
 */
export class AgentClient implements IDisposable {
  constructor(options: AgentClient.IOptions = {}) {
    this._serverSettings =
      options.serverSettings ?? ServerConnection.makeSettings();
    this._clientName = options.clientName ?? 'jupyterlab-bigmaac';
    this._requestTimeout = options.requestTimeout ?? 60_000;
    this._maxBackoff = options.maxBackoff ?? 30_000;
  }

  /** The websocket URL, with the token appended as JupyterLab does for kernels. */
  get url(): string {
    const settings = this._serverSettings;
    let url = URLExt.join(settings.wsUrl, AGENT_WS_PATH);
    if (settings.appendToken && settings.token !== '') {
      url += `?token=${encodeURIComponent(settings.token)}`;
    }
    return url;
  }

  get status(): ConnectionStatus {
    return this._status;
  }

  /** Emitted when the connection status changes. */
  get statusChanged(): ISignal<this, ConnectionStatus> {
    return this._statusChanged;
  }

  /** Emitted for every notification the agent sends (for example `$/progress`). */
  get notificationReceived(): ISignal<this, IAgentNotification> {
    return this._notificationReceived;
  }

  /** The agent's answer to `initialize` on the current connection, if any. */
  get serverInfo(): InitializeResult | null {
    return this._initializeResult;
  }

  /** The reason of the last connection failure, for display. */
  get lastError(): string {
    return this._lastError;
  }

  get isDisposed(): boolean {
    return this._isDisposed;
  }

  /**
   * Send a request and resolve with its result.
   *
   * Waits for the connection (and its `initialize`) first; rejects with an
   * `AgentError` on an error answer, a lost connection or a timeout.
   * `options.timeout` overrides the client's request timeout (0: none).
   */
  async request<T>(
    method: string,
    params?: unknown,
    options: IRequestOptions = {}
  ): Promise<T> {
    await this._ensureReady();
    return this._send<T>(method, params, options.timeout, options.signal);
  }

  /** Send a notification (no answer). Dropped when not connected. */
  notify(method: string, params?: unknown): void {
    if (this._status === 'connected' && this._socket) {
      this._socket.send(JSON.stringify({ jsonrpc: '2.0', method, params }));
    }
  }

  dispose(): void {
    if (this._isDisposed) {
      return;
    }
    this._isDisposed = true;
    this._clearReconnect();
    this._closeSocket();
    this._rejectAll('The BigMaac agent client was disposed.');
    this._ready?.reject(
      new AgentError('disposed', CONNECTION_ERROR, 'ECONNECTION')
    );
    this._ready = null;
    Signal.clearData(this);
  }

  /**
   * The promise of a usable connection, opening one if none was tried yet.
   *
   * While waiting out a reconnection delay it fails at once with the last
   * error, so a caller polling on a timer shows the problem without delay.
   */
  private _ensureReady(): Promise<void> {
    if (this._isDisposed) {
      return Promise.reject(
        new AgentError(
          'The BigMaac agent client was disposed.',
          CONNECTION_ERROR,
          'ECONNECTION'
        )
      );
    }
    switch (this._status) {
      case 'connected':
        return Promise.resolve();
      case 'idle':
        this._connect();
        break;
      default:
        break;
    }
    // `_connect` may have failed at once and left no connection to wait for.
    return this._ready
      ? this._ready.promise
      : Promise.reject(
          new AgentError(
            `not connected: ${this._lastError}`,
            CONNECTION_ERROR,
            'ECONNECTION'
          )
        );
  }

  private _connect(): void {
    this._ready = new PromiseDelegate<void>();
    // Nobody may be waiting; a rejection must not surface as unhandled.
    this._ready.promise.catch(() => undefined);
    this._setStatus('connecting');
    let socket: WebSocket;
    try {
      socket = new this._serverSettings.WebSocket(this.url);
    } catch (error) {
      this._lastError = String(error);
      this._scheduleReconnect();
      return;
    }
    this._socket = socket;
    socket.onopen = () => void this._onOpen();
    socket.onmessage = event => this._onMessage(event.data);
    socket.onclose = event => this._onClose(event);
    socket.onerror = () => {
      // A close event always follows; the reason is reported there.
    };
  }

  private async _onOpen(): Promise<void> {
    try {
      const result = await this._send<InitializeResult>(Methods.initialize, {
        processId: null,
        clientInfo: { name: this._clientName },
        protocolVersion: PROTOCOL_VERSION
      });
      this._initializeResult = result;
      this._backoff = 0;
      this._lastError = '';
      this._setStatus('connected');
      this.notify(Methods.initialized, {});
      this._ready?.resolve();
      this._ready = null;
    } catch (error) {
      this._lastError = `initialize failed: ${(error as Error).message}`;
      this._closeSocket();
    }
  }

  private _onMessage(data: unknown): void {
    if (typeof data !== 'string') {
      return;
    }
    let message: any;
    try {
      message = JSON.parse(data);
    } catch {
      console.warn('BigMaac: ignoring a frame that is not JSON', data);
      return;
    }
    if (!message || typeof message !== 'object') {
      return;
    }
    if ('id' in message && ('result' in message || 'error' in message)) {
      this._settle(message);
    } else if (typeof message.method === 'string' && !('id' in message)) {
      this._notificationReceived.emit({
        method: message.method,
        params: message.params
      });
    }
  }

  /** Resolve or reject the request that `message` answers. */
  private _settle(message: any): void {
    const pending = this._pending.get(message.id);
    if (!pending) {
      return;
    }
    this._pending.delete(message.id);
    if (pending.timer !== null) {
      clearTimeout(pending.timer);
    }
    if (message.error) {
      const error = message.error;
      pending.delegate.reject(
        new AgentError(
          String(error.message ?? 'Unknown agent error'),
          Number(error.code ?? ErrorCodes.InternalError),
          (error.data?.code as ErrorName) ?? 'EINTERNAL'
        )
      );
    } else {
      pending.delegate.resolve(message.result);
    }
  }

  private _onClose(event: { code: number; reason: string }): void {
    this._socket = null;
    this._initializeResult = null;
    if (!this._lastError) {
      this._lastError = event.reason
        ? `the connection closed: ${event.reason} (code ${event.code})`
        : `the connection closed (code ${event.code})`;
    }
    this._rejectAll(
      `Lost the connection to the BigMaac agent: ${this._lastError}`
    );
    if (this._isDisposed) {
      return;
    }
    this._scheduleReconnect();
  }

  /** Reconnect after a delay that doubles on every failure, up to the maximum. */
  private _scheduleReconnect(): void {
    this._clearReconnect();
    this._setStatus('closed');
    this._backoff = Math.min(
      this._maxBackoff,
      this._backoff === 0 ? 500 : this._backoff * 2
    );
    this._ready?.reject(
      new AgentError(
        `not connected: ${this._lastError}`,
        CONNECTION_ERROR,
        'ECONNECTION'
      )
    );
    this._ready = null;
    this._reconnectTimer = setTimeout(() => {
      this._reconnectTimer = null;
      this._lastError = '';
      this._connect();
    }, this._backoff);
  }

  private _send<T>(
    method: string,
    params?: unknown,
    timeout = this._requestTimeout,
    signal?: AbortSignal
  ): Promise<T> {
    const socket = this._socket;
    if (!socket || socket.readyState !== OPEN) {
      return Promise.reject(
        new AgentError(
          'Not connected to the BigMaac agent.',
          CONNECTION_ERROR,
          'ECONNECTION'
        )
      );
    }
    const id = this._nextId++;
    const delegate = new PromiseDelegate<T>();
    const timer =
      timeout > 0 ? setTimeout(() => this._timeout(id), timeout) : null;
    this._pending.set(id, { method, delegate, timer });
    const message: any = { jsonrpc: '2.0', id, method };
    if (params !== undefined) {
      message.params = params;
    }
    socket.send(JSON.stringify(message));
    if (signal) {
      const cancel = () => this.notify(Methods.cancelRequest, { id });
      if (signal.aborted) {
        cancel();
      } else {
        signal.addEventListener('abort', cancel, { once: true });
        const forget = () => signal.removeEventListener('abort', cancel);
        delegate.promise.then(forget, forget);
      }
    }
    return delegate.promise;
  }

  private _timeout(id: number): void {
    const pending = this._pending.get(id);
    if (!pending) {
      return;
    }
    this._pending.delete(id);
    pending.delegate.reject(
      new AgentError(
        `The BigMaac agent did not answer ${pending.method} in time.`,
        CONNECTION_ERROR,
        'ETIMEOUT'
      )
    );
  }

  private _rejectAll(reason: string): void {
    const pending = [...this._pending.values()];
    this._pending.clear();
    for (const entry of pending) {
      if (entry.timer !== null) {
        clearTimeout(entry.timer);
      }
      entry.delegate.reject(
        new AgentError(reason, CONNECTION_ERROR, 'ECONNECTION')
      );
    }
  }

  private _closeSocket(): void {
    const socket = this._socket;
    if (socket) {
      socket.onopen = null;
      socket.onmessage = null;
      socket.onerror = null;
      if (this._isDisposed) {
        socket.onclose = null;
        this._socket = null;
      }
      socket.close();
    }
  }

  private _clearReconnect(): void {
    if (this._reconnectTimer !== null) {
      clearTimeout(this._reconnectTimer);
      this._reconnectTimer = null;
    }
  }

  private _setStatus(status: ConnectionStatus): void {
    if (this._status !== status) {
      this._status = status;
      this._statusChanged.emit(status);
    }
  }

  private _serverSettings: ServerConnection.ISettings;
  private _clientName: string;
  private _requestTimeout: number;
  private _maxBackoff: number;
  private _socket: WebSocket | null = null;
  private _status: ConnectionStatus = 'idle';
  private _ready: PromiseDelegate<void> | null = null;
  private _pending = new Map<number, IPending>();
  private _nextId = 1;
  private _backoff = 0;
  private _reconnectTimer: ReturnType<typeof setTimeout> | null = null;
  private _initializeResult: InitializeResult | null = null;
  private _lastError = '';
  private _isDisposed = false;
  private _statusChanged = new Signal<this, ConnectionStatus>(this);
  private _notificationReceived = new Signal<this, IAgentNotification>(this);
}

export namespace AgentClient {
  export interface IOptions {
    /** Server settings; defaults to `ServerConnection.makeSettings()`. */
    serverSettings?: ServerConnection.ISettings;
    /** Name sent in `initialize`'s `clientInfo`. */
    clientName?: string;
    /** Milliseconds before a request without answer is rejected (0: never). */
    requestTimeout?: number;
    /** Longest wait between reconnection attempts, in milliseconds. */
    maxBackoff?: number;
  }
}
