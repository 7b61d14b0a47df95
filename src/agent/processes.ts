/**
 * The processes running under the library, as the protocol reports them.
 */
import { ProcessDetails, ProcessInfo } from '../common/protocol';
import { loadAddon, ProcessSnapshot } from './addon';

export function toProcessInfo(snapshot: ProcessSnapshot): ProcessInfo {
  return {
    pid: snapshot.pid,
    startTime: snapshot.startTime,
    uid: snapshot.uid,
    kernelId: snapshot.kernelId,
    label: snapshot.label,
    command: snapshot.command,
    swapDir: snapshot.swapDir,
    diskBacked: { bytes: snapshot.diskBacked.bytes, count: snapshot.diskBacked.count },
    peakBytes: snapshot.peakBytes,
    updatedAt: snapshot.updatedAt
  };
}

/** Every live process under the library, by pid. Stale segments are removed on the way. */
export function listProcesses(): ProcessInfo[] {
  return loadAddon()
    .listProcesses()
    .map(toProcessInfo)
    .sort((a, b) => a.pid - b.pid);
}

/** One process in detail; throws the addon's ENOENT_PROCESS when it is not under the library. */
export function getProcess(pid: number): ProcessDetails {
  const details = loadAddon().readProcess(pid);
  return {
    ...toProcessInfo(details),
    swapFs: details.swapFs,
    swapOnRam: details.swapOnRam,
    minBigSize: details.minBigSize,
    createdAt: details.createdAt,
    heartbeatAt: details.heartbeatAt,
    counters: { ...details.counters },
    allocationsTotal: details.allocationsTotal,
    allocations: details.allocations.map(a => ({ ...a }))
  };
}

/** Largest pid Linux can hand out (PID_MAX_LIMIT on 64-bit). */
const PID_MAX_LIMIT = 4194304;

/** Why `value` is not a pid, or undefined when it is one. */
export function pidProblem(value: unknown): string | undefined {
  if (typeof value !== 'number' || !Number.isInteger(value)) {
    return `pid must be an integer, got ${JSON.stringify(value) ?? String(value)}`;
  }
  if (value < 1 || value > PID_MAX_LIMIT) {
    return `pid must be between 1 and ${PID_MAX_LIMIT}, got ${value}`;
  }
  return undefined;
}
