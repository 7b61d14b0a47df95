/**
 * The processes running under the library, as the protocol reports them.
 */
import { ProcessDetails, ProcessInfo, ProcessResidency } from '../common/protocol';
import { isAddonError, loadAddon, ProcessSnapshot, ResidencyResult } from './addon';

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

/** The addon's residency call, when this build has it. */
function residencyCall(): ((pid: number) => Promise<ResidencyResult>) | undefined {
  const addon = loadAddon();
  return typeof addon.residency === 'function' ? pid => addon.residency(pid) : undefined;
}

/** Page-cache bytes of `pid`'s disk-backed memory, measured now by the process. */
export async function measureResident(pid: number): Promise<number> {
  const residency = residencyCall();
  if (!residency) {
    throw new Error('this addon cannot measure residency');
  }
  return (await residency(pid)).resident;
}

/**
 * `getProcess` plus residency, measured now by the process itself. A process that cannot
 * answer (stopped: ETIMEDOUT; an addon without the call) gets `residency: null`; other
 * errors (gone, not ours) are thrown as by `getProcess`.
 */
export async function getProcessWithResidency(pid: number): Promise<ProcessDetails> {
  const details = getProcess(pid);
  const residency = residencyCall();
  let measured: ResidencyResult | undefined;
  try {
    measured = residency ? await residency(pid) : undefined;
  } catch (error) {
    if (!(isAddonError(error) && error.code === 'ETIMEDOUT')) {
      throw error;
    }
  }
  if (!measured) {
    return { ...details, residency: null };
  }
  const byAddress = new Map(measured.allocations.map(a => [a.address, a]));
  const summary: ProcessResidency = {
    resident: measured.resident,
    dirty: measured.dirty,
    dirtyKnown: measured.dirtyKnown,
    measuredAt: measured.measuredAt
  };
  return {
    ...details,
    residency: summary,
    allocations: details.allocations.map(allocation => {
      const found = byAddress.get(allocation.address);
      return found ? { ...allocation, resident: found.resident, dirty: found.dirty } : allocation;
    })
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
