/**
 * The BigMaac agent protocol: JSON-RPC 2.0 method names, parameters, results and
 * error codes shared by the agent, the CLI and the front ends.
 *
 * Pure types and constants: this module is compiled both for Node (the agent) and
 * for the browser (the JupyterLab extension), so it must not import anything.
 * The prose version is docs/protocol.md; keep the two in step.
 */

/**
 * Version of this protocol. The minor part grows when methods or fields are added;
 * the major part changes only when an existing method changes meaning.
 */
export const PROTOCOL_VERSION = '1.1';

/**
 * Method and notification names.
 */
export namespace Methods {
  export const initialize = 'initialize';
  export const initialized = 'initialized';
  export const shutdown = 'shutdown';
  export const exit = 'exit';
  export const processesList = 'processes/list';
  export const processGet = 'process/get';
  export const processPageout = 'process/pageout';
  export const progress = '$/progress';
  export const cancelRequest = '$/cancelRequest';
  export const statsSubscribe = 'stats/subscribe';
  export const statsUnsubscribe = 'stats/unsubscribe';
  export const statsUpdate = 'stats/update';
  export const processesChanged = 'processes/changed';
  export const historyGet = 'history/get';
  export const policyGet = 'policy/get';
  export const policySet = 'policy/set';
  export const processExits = 'process/exits';
  /** Notification from the Jupyter server: a kernel's execution state changed. */
  export const kernelState = 'kernel/state';
  /** Notification from the agent: a page-out ended (any reason). */
  export const pageoutFinished = 'pageout/finished';
  /** Notification from the agent: a BigMaac process disappeared. */
  export const processExited = 'process/exited';
  /** The container's memory: the agent's memory cgroup, charged against its limit. */
  export const memoryGet = 'memory/get';
}

/**
 * Error codes in JSON-RPC error responses. Every error also carries
 * `data: { code }` with the symbolic name below, so clients need not keep
 * the numbers.
 */
export namespace ErrorCodes {
  /** JSON-RPC: the body is not JSON; answered with a null id. */
  export const ParseError = -32700;
  /**
   * JSON-RPC: the request is not allowed now (after `shutdown`, a second `initialize`), or
   * the body is JSON but not a JSON-RPC 2.0 message.
   */
  export const InvalidRequest = -32600;
  /** JSON-RPC: the params are not what the method takes. */
  export const InvalidParams = -32602;
  /** JSON-RPC: the method does not exist. */
  export const MethodNotFound = -32601;
  /** JSON-RPC: the agent failed for a reason listed nowhere else. */
  export const InternalError = -32603;
  /**
   * Sent by the Jupyter server's websocket proxy, never by the agent: the agent cannot be
   * started or died while the request was pending (docs/architecture.md §5).
   */
  export const AgentUnavailable = -32001;
  /** A request other than `initialize` arrived before `initialize` (as in LSP). */
  export const NotInitialized = -32002;
  /** No BigMaac process with that pid (never existed, exited, or not under the library). */
  export const UnknownProcess = -32100;
  /** The process belongs to someone the agent may not act for. */
  export const PermissionDenied = -32101;
  /** The process's segment is foreign, truncated or of another layout version. */
  export const IncompatibleSegment = -32102;
  /** A page-out of that process is already running. */
  export const PageoutRunning = -32103;
  /** The client cancelled the request through `$/cancelRequest`. */
  export const RequestCancelled = -32800;
}

/** Symbolic names carried in `error.data.code`. */
export type ErrorName =
  | 'EINVAL'
  | 'ENOMETHOD'
  | 'EINTERNAL'
  | 'ENOT_INITIALIZED'
  | 'ENOENT_PROCESS'
  | 'EPERM'
  | 'EINCOMPATIBLE'
  | 'EBUSY_PAGEOUT'
  | 'ETORN'
  | 'ECANCELLED'
  | 'ETIMEDOUT';

/** What `error.data` holds in every error the agent sends. */
export interface ErrorData {
  code: ErrorName;
}

// ------------------------------------------------------------------ lifecycle

export interface ClientInfo {
  name: string;
  version?: string;
}

export interface InitializeParams {
  /** The client's pid, informative only (the watchdog uses --parent-pid). */
  processId?: number | null;
  clientInfo?: ClientInfo;
  /** The protocol version the client was written for. */
  protocolVersion?: string;
}

/**
 * What the agent can do. Clients test a capability before they use a method, so
 * later versions add entries here instead of bumping the protocol's major version.
 */
export interface ServerCapabilities {
  /** `processes/list` is served. */
  processesList: boolean;
  /** `process/get` is served (stats and allocations; residency from 1.1, see `residency`). */
  processGet: boolean;
  /** `process/pageout`: whether it is served, reports `$/progress`, and honours cancel. */
  pageout: { supported: boolean; workDoneProgress: boolean; cancellable: boolean };
  /** `stats/subscribe`, `stats/unsubscribe`, `stats/update` and `processes/changed`. */
  statsSubscription: boolean;
  /** `history/get`. */
  history: boolean;
  /** Names of the policies `policy/get` and `policy/set` know (`idlePageout`, `pressure`). */
  policies: string[];
  /** `policy/get` and `policy/set` are served (1.1). */
  policy?: boolean;
  /** The agent acts on `kernel/state` notifications (1.1). */
  kernelState?: boolean;
  /** `process/exited` notifications and the `process/exits` request (1.1). */
  processExits?: boolean;
  /** `process/get` reports `residency` (1.1). */
  residency?: boolean;
  /** `pageout/finished` notifications (1.1). */
  pageoutFinished?: boolean;
  /** `memory/get`, and `container` in `stats/update` (1.1). */
  containerMemory?: boolean;
}

export interface ServerInfo {
  name: string;
  version: string;
}

export interface InitializeResult {
  protocolVersion: string;
  capabilities: ServerCapabilities;
  serverInfo: ServerInfo;
}

// ------------------------------------------------------------------ processes

/** One process running under the library, as the agent reports it. */
export interface ProcessInfo {
  pid: number;
  /** Start time in clock ticks since boot (field 22 of /proc/PID/stat): with pid, the identity. */
  startTime: number;
  uid: number;
  /** Jupyter kernel id (BIGMAAC_KERNEL_ID), empty when not a kernel. */
  kernelId: string;
  /** Human label (BIGMAAC_LABEL), may be empty. */
  label: string;
  /** Command line from /proc/PID/cmdline, arguments joined by spaces; empty if unreadable. */
  command: string;
  /** Directory holding the process's unlinked swap files. */
  swapDir: string;
  /** Live disk-backed allocations. */
  diskBacked: { bytes: number; count: number };
  /** Highest disk-backed byte count seen so far. */
  peakBytes: number;
  /** When the process last updated its stats, milliseconds since the Unix epoch. */
  updatedAt: number;
}

export interface ProcessesListResult {
  processes: ProcessInfo[];
}

export interface ProcessGetParams {
  pid: number;
}

/** One live disk-backed allocation. */
export interface AllocationInfo {
  /** Start address in the process (a plain number). */
  address: number;
  /** Mapped bytes. */
  size: number;
  /** Milliseconds since the Unix epoch. */
  createdAt: number;
  /** `big`: its own file-backed region; `fry`: a block of the small-allocation arena (later). */
  tier: 'big' | 'fry';
  /** `process/get` only (1.1): bytes of it in RAM (page cache), when measured. */
  resident?: number;
  /** `process/get` only (1.1): of which dirty or under write-back, when measured. */
  dirty?: number;
}

/** Cumulative counters of one process since its first disk-backed allocation. */
export interface ProcessCounters {
  liveBigCount: number;
  liveBigBytes: number;
  liveFryCount: number;
  liveFryBytes: number;
  allocs: number;
  frees: number;
  reallocs: number;
  /** Bytes reserved on disk (fallocated) in the swap files. */
  diskReserved: number;
  /** Big requests served from RAM because the swap directory was unusable. */
  fallbacks: number;
  /** Big requests that failed (for example: disk full). */
  failures: number;
  pageouts: number;
}

/** Everything `process/get` reports about one process. */
export interface ProcessDetails extends ProcessInfo {
  /** Filesystem type of the swap directory ("ext4", "tmpfs", ...). */
  swapFs: string;
  /** The swap directory is RAM (tmpfs, ramfs): disk-backing saves nothing there. */
  swapOnRam: boolean;
  /** The threshold in effect (BIGMAAC_MIN_BIGMAAC_SIZE), bytes. */
  minBigSize: number;
  /** When the process made its first disk-backed allocation, ms since the Unix epoch. */
  createdAt: number;
  /** Refreshed by the process at least every second while it lives. */
  heartbeatAt: number;
  counters: ProcessCounters;
  /** Number of live allocations; `allocations` lists the largest ones (at most 1024). */
  allocationsTotal: number;
  allocations: AllocationInfo[];
  /**
   * (1.1) How much of its disk-backed memory is in RAM, measured by the process on this
   * request; null when it could not answer (stopped, or older library).
   */
  residency?: ProcessResidency | null;
}

/** Page-cache bytes of a process's disk-backed memory: what a page-out can give back. */
export interface ProcessResidency {
  /** Bytes in RAM, over all live disk-backed allocations. */
  resident: number;
  /** Of which dirty or under write-back (0 when `dirtyKnown` is false). */
  dirty: number;
  /** False on kernels without cachestat(2) (< 6.5): `dirty` was not measured. */
  dirtyKnown: boolean;
  /** When the process measured, ms since the Unix epoch. */
  measuredAt: number;
}

export interface ProcessGetResult {
  process: ProcessDetails;
}

// ------------------------------------------------------------------ page-out

export interface PageoutParams {
  pid: number;
  /** When given, the agent reports progress with `$/progress` under this token. */
  workDoneToken?: ProgressToken;
}

export interface PageoutResult {
  pid: number;
  /** Bytes written back to the swap files. */
  bytesWritten: number;
  durationMs: number;
  /** Disk-backed bytes resident in RAM before and after the page-out. */
  residentBefore: number;
  residentAfter: number;
}

// ------------------------------------------------------------------ progress

export type ProgressToken = number | string;

/** `value` of a `$/progress` notification for a page-out, shaped like LSP's work-done progress. */
export type PageoutProgress =
  | { kind: 'begin'; title: string; cancellable: boolean; percentage: number }
  | { kind: 'report'; bytesDone: number; bytesTotal: number; percentage: number }
  | { kind: 'end'; message: string };

export interface ProgressParams<T> {
  token: ProgressToken;
  value: T;
}

// ------------------------------------------------------------------ subscriptions

export interface StatsSubscribeParams {
  /** How often to send `stats/update`, ms; clamped to [minIntervalMs, maxIntervalMs]. */
  intervalMs: number;
}

export interface StatsSubscribeResult {
  /** Pass it to `stats/unsubscribe`. */
  subscriptionId: number;
  /** The interval granted for this subscription, after clamping. */
  intervalMs: number;
}

export interface StatsUnsubscribeParams {
  subscriptionId: number;
}

export interface StatsUnsubscribeResult {
  /** False when no subscription had that id (already gone). */
  removed: boolean;
}

/** `stats/update` notification: every live process, sampled on one tick of the agent's timer. */
export interface StatsUpdateParams {
  /** When the sample was taken, ms since the Unix epoch. */
  timestamp: number;
  /** The agent's current tick interval, ms (the smallest interval subscribed). */
  intervalMs: number;
  processes: ProcessInfo[];
  /** The container's memory on this tick; present when `containerMemory` is advertised. */
  container?: ContainerMemory | null;
}

/** Identity of a process that has gone: pid and start time. */
export interface ProcessIdentity {
  pid: number;
  startTime: number;
}

/** `processes/changed` notification: processes appeared or disappeared since the last sample. */
export interface ProcessesChangedParams {
  timestamp: number;
  added: ProcessInfo[];
  /** Processes that exited, were killed, or whose pid was reused. */
  removed: ProcessIdentity[];
  /** Pids of every live process after the change, sorted. */
  pids: number[];
}

// ------------------------------------------------------------------ history

export interface HistoryGetParams {
  pid: number;
  /** Only samples taken after this time, ms since the Unix epoch. */
  sinceMs?: number;
}

/** One sample of a process, taken by the agent's timer. */
export interface HistorySample {
  /** ms since the Unix epoch. */
  at: number;
  /** Live disk-backed bytes and allocations. */
  diskBackedBytes: number;
  diskBackedCount: number;
  peakBytes: number;
}

export interface HistoryGetResult {
  pid: number;
  startTime: number;
  /** Oldest first. At most `capacity`; older samples were dropped. */
  samples: HistorySample[];
  capacity: number;
}

// ------------------------------------------------------------------ policies (1.1)

/** What the agent does on its own. One policy per agent (one agent per server and user). */
export interface Policy {
  /** Page out a kernel once it has been idle `idleSeconds` (once, until it runs again). */
  idlePageout: { enabled: boolean; idleSeconds: number };
  /** Page out idle kernels, most resident first, while the agent's memory cgroup is above
   * `thresholdPercent` of its limit. */
  pressure: { enabled: boolean; thresholdPercent: number };
}

/** `policy/set` params: any part of a Policy; what is left out keeps its value. */
export interface PolicySetParams {
  idlePageout?: Partial<Policy['idlePageout']>;
  pressure?: Partial<Policy['pressure']>;
}

/** `kernel/state` notification (from the Jupyter server). */
export interface KernelStateParams {
  kernelId: string;
  /** "busy", "idle", "starting", ...: only "idle" counts as idle. */
  state: string;
  pid?: number | null;
}

export type PageoutReason = 'request' | 'idle' | 'pressure';

/** `pageout/finished` notification: sent for every page-out the agent ran. */
export interface PageoutFinishedParams {
  pid: number;
  kernelId?: string;
  reason: PageoutReason;
  ok: boolean;
  /** When `ok` is false. */
  error?: { code: ErrorName | string; message: string };
  /** When `ok` is true. */
  result?: Omit<PageoutResult, 'pid'>;
  /** ms since the Unix epoch. */
  at: number;
}

export type ExitCause = 'oom-killed' | 'killed' | 'exited' | 'unknown';

/** `process/exited` notification, and one entry of `process/exits`. */
export interface ProcessExitedParams {
  pid: number;
  startTime?: number;
  kernelId?: string;
  /** When the agent saw it gone, ms since the Unix epoch. */
  at: number;
  cause: ExitCause;
  /** One sentence for people: why the agent judged so. */
  detail: string;
}

export interface ProcessExitsParams {
  /** Only exits seen after this time, ms since the Unix epoch. */
  sinceMs?: number;
}

export interface ProcessExitsResult {
  /** Oldest first; at most `capacity`. */
  exits: ProcessExitedParams[];
  capacity: number;
}

// ------------------------------------------------------------------ container memory

/** Where `ContainerMemory` was read: the v1 `memory` controller or the v2 hierarchy. */
export type ContainerMemorySource = 'cgroup-v1' | 'cgroup-v2';

/**
 * The agent's memory cgroup (the container's, in the usual one-cgroup-per-container setup):
 * what it is charged now against its limit. Null wherever no memory cgroup can be read.
 */
export interface ContainerMemory {
  /** Bytes charged now (memory.usage_in_bytes or memory.current: page cache included). */
  usage: number;
  /** Bytes; null when the cgroup has no limit. */
  limit: number | null;
  source: ContainerMemorySource;
}

/** `memory/get` result. */
export interface MemoryGetResult {
  container: ContainerMemory | null;
  /** When it was read, ms since the Unix epoch. */
  measuredAt: number;
}
