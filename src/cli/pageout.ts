/**
 * `bigmaac pageout PID [--json]`: writes a process's disk-backed memory back to its
 * swap files and drops it from RAM.
 */
import { PageoutManager } from '../agent/pageout';
import { pidProblem } from '../agent/processes';
import { usageError } from './errors';
import { formatBytes, formatDuration } from './units';

/** The pid in `text`, or a usage error that quotes it. */
export function parsePid(text: string | undefined, context = 'pageout'): number {
  if (text === undefined) {
    throw usageError(`${context}: which process? usage: bigmaac pageout PID [--json]`);
  }
  const pid = /^\d+$/.test(text) ? Number(text) : NaN;
  const problem = pidProblem(pid);
  if (problem) {
    throw usageError(`${context}: '${text}' is not a pid`);
  }
  return pid;
}

export async function pageout(pidText: string | undefined, json: boolean): Promise<void> {
  const pid = parsePid(pidText);
  const showProgress = !json && process.stderr.isTTY;
  const result = await new PageoutManager().pageout(pid, {
    onProgress: showProgress
      ? ({ bytesDone, bytesTotal }) =>
          process.stderr.write(
            `\rpaging out ${formatBytes(bytesDone)} of ${formatBytes(bytesTotal)}\x1b[K`
          )
      : undefined
  });
  if (showProgress) {
    process.stderr.write('\r\x1b[K');
  }
  if (json) {
    process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
    return;
  }
  process.stdout.write(
    `Paged out process ${pid}: wrote ${formatBytes(result.bytesWritten)} in ` +
      `${formatDuration(result.durationMs)}; resident ${formatBytes(result.residentBefore)} -> ` +
      `${formatBytes(result.residentAfter)}\n`
  );
}
