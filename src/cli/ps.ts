/**
 * `bigmaac ps [--json]`: the processes running under the library.
 */
import { ProcessInfo, ProcessesListResult } from '../common/protocol';
import { listProcesses } from '../agent/processes';
import { formatBytes, formatTable } from './units';

/** The kernel id shortened as Jupyter shows it, else the label, else "-". */
export function owner(info: ProcessInfo): string {
  if (info.kernelId) {
    return `kernel ${info.kernelId.slice(0, 8)}`;
  }
  return info.label || '-';
}

/** The command on one line (arguments may hold newlines), cut to keep rows readable. */
function shortCommand(command: string): string {
  const line = command.replace(/\s+/g, ' ').trim();
  return line.length > 60 ? `${line.slice(0, 59)}…` : line || '?';
}

export function formatProcesses(processes: ProcessInfo[]): string {
  if (processes.length === 0) {
    return 'No processes are running under BigMaac.';
  }
  const header = ['PID', 'DISK-BACKED', 'ALLOCS', 'PEAK', 'KERNEL/LABEL', 'COMMAND'];
  const rows = processes.map(p => [
    String(p.pid),
    formatBytes(p.diskBacked.bytes),
    String(p.diskBacked.count),
    formatBytes(p.peakBytes),
    owner(p),
    shortCommand(p.command)
  ]);
  return formatTable(header, rows, new Set([0, 1, 2, 3]));
}

export function ps(json: boolean): void {
  const processes = listProcesses();
  if (json) {
    const result: ProcessesListResult = { processes };
    process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
  } else {
    process.stdout.write(`${formatProcesses(processes)}\n`);
  }
}
