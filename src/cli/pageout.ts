/**
 * `bigmaac pageout PID|--all [--json]`: writes processes' disk-backed memory back to their
 * swap files and drops it from RAM.
 */
import { PageoutResult } from '../common/protocol';
import { PageoutManager } from '../agent/pageout';
import { listProcesses, pidProblem } from '../agent/processes';
import { CliError, ExitCode, fromAddonError, usageError } from './errors';
import { formatBytes, formatDuration } from './units';

const USAGE = 'bigmaac pageout PID|--all [--json]';

/** The pid in `text`, or a usage error that quotes it. */
export function parsePid(text: string | undefined, context = 'pageout', usage = USAGE): number {
  if (text === undefined) {
    throw usageError(`${context}: which process? usage: ${usage}`);
  }
  const pid = /^\d+$/.test(text) ? Number(text) : NaN;
  const problem = pidProblem(pid);
  if (problem) {
    throw usageError(`${context}: '${text}' is not a pid`);
  }
  return pid;
}

function describe(result: PageoutResult): string {
  return (
    `Paged out process ${result.pid}: wrote ${formatBytes(result.bytesWritten)} in ` +
    `${formatDuration(result.durationMs)}; resident ${formatBytes(result.residentBefore)} -> ` +
    `${formatBytes(result.residentAfter)}`
  );
}

/** Pages one process out, with progress on a terminal's stderr unless `quiet`. */
async function pageoutOne(
  manager: PageoutManager,
  pid: number,
  quiet: boolean
): Promise<PageoutResult> {
  const showProgress = !quiet && process.stderr.isTTY;
  try {
    return await manager.pageout(pid, {
      onProgress: showProgress
        ? ({ bytesDone, bytesTotal }) =>
            process.stderr.write(
              `\rpaging out ${pid}: ${formatBytes(bytesDone)} of ${formatBytes(bytesTotal)}\x1b[K`
            )
        : undefined
    });
  } finally {
    if (showProgress) {
      process.stderr.write('\r\x1b[K');
    }
  }
}

export async function pageout(pidText: string | undefined, json: boolean): Promise<void> {
  const pid = parsePid(pidText);
  const result = await pageoutOne(new PageoutManager(), pid, json);
  process.stdout.write(json ? `${JSON.stringify(result, null, 2)}\n` : `${describe(result)}\n`);
}

/** What `pageout --all --json` prints. */
export interface PageoutAllResult {
  results: PageoutResult[];
  /** Processes that could not be paged out, with the exit code's reason. */
  failures: { pid: number; message: string }[];
  /** Processes that exited between the listing and their page-out. */
  exited: number[];
}

/**
 * Pages out every process listed, one after the other (each page-out is disk-bound: running
 * them side by side would not finish sooner). A process that exited meanwhile is skipped;
 * any other failure is reported and the rest still get paged out.
 */
export async function pageoutAll(json: boolean): Promise<void> {
  const manager = new PageoutManager();
  const summary: PageoutAllResult = { results: [], failures: [], exited: [] };
  const processes = listProcesses();
  for (const { pid } of processes) {
    try {
      const result = await pageoutOne(manager, pid, json);
      summary.results.push(result);
      if (!json) {
        process.stdout.write(`${describe(result)}\n`);
      }
    } catch (error) {
      const failure = fromAddonError(error);
      if (failure.exitCode === ExitCode.noProcess) {
        summary.exited.push(pid);
        continue;
      }
      summary.failures.push({ pid, message: failure.message });
      if (!json) {
        process.stderr.write(`bigmaac: ${failure.message}\n`);
      }
    }
  }
  if (json) {
    process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
  } else if (processes.length === 0) {
    process.stdout.write('No processes are running under BigMaac.\n');
  }
  if (summary.failures.length > 0) {
    const count = summary.failures.length;
    // The lines above said why; the exit code says that something failed.
    throw new CliError(`${count} of ${processes.length} page-outs failed`, ExitCode.failure);
  }
}
