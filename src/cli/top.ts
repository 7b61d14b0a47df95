/**
 * `bigmaac top [--interval SEC] [--once]`: a live view of the processes under BigMaac, with
 * a bar per process of its disk-backed memory in RAM against all of it.
 *
 * Each frame reads the stats segments (as `ps` does) and asks each process for its residency
 * (it measures its own page cache, see docs/protocol.md); never /proc/PID/smaps.
 */
import { ProcessInfo } from '../common/protocol';
import { listProcesses, measureResident } from '../agent/processes';
import { CliError, ExitCode } from './errors';
import { owner } from './ps';
import { formatBytes, formatTable } from './units';

const MIN_BAR = 10;
const MAX_BAR = 40;

export interface TopFrameOptions {
  /** Terminal columns. */
  width: number;
  intervalMs: number;
}

/** `#` for the `inner` bytes, `.` up to `outer`, scaled so that `scale` fills `width`. */
export function bar(inner: number, outer: number, scale: number, width: number): string {
  if (scale <= 0) {
    return `[${' '.repeat(width)}]`;
  }
  const now = Math.min(width, Math.round((inner / scale) * width));
  const high = Math.min(width, Math.max(now, Math.round((outer / scale) * width)));
  return `[${'#'.repeat(now)}${'.'.repeat(high - now)}${' '.repeat(width - high)}]`;
}

/**
 * One frame of `top`, as text. `resident` maps pids to their disk-backed bytes in RAM; a
 * process missing from it (it could not answer) shows `?` and a bar of disk-backed bytes only.
 */
export function renderTop(
  processes: ProcessInfo[],
  options: TopFrameOptions,
  resident: Map<number, number> = new Map()
): string {
  const total = processes.reduce((sum, p) => sum + p.diskBacked.bytes, 0);
  const ms = options.intervalMs;
  const every = ms >= 1000 ? `${ms / 1000} s` : `${ms} ms`;
  const title =
    `bigmaac top: ${processes.length} process${processes.length === 1 ? '' : 'es'}, ` +
    `${formatBytes(total)} disk-backed; every ${every}; q or Ctrl-C quits`;
  if (processes.length === 0) {
    return `${title}\n\nNo processes are running under BigMaac.`;
  }
  const scale = Math.max(...processes.map(p => p.diskBacked.bytes));
  const inRam = (p: ProcessInfo) => resident.get(p.pid);
  const fixed = processes.map(p => {
    const ram = inRam(p);
    return [
      String(p.pid),
      formatBytes(p.diskBacked.bytes),
      ram === undefined ? '?' : formatBytes(ram),
      formatBytes(p.peakBytes),
      String(p.diskBacked.count)
    ];
  });
  // What the other columns take, so the bar fills the rest of the line within limits.
  const used = [0, 1, 2, 3, 4]
    .map(i => Math.max(...fixed.map(row => row[i].length), 11))
    .reduce((sum, w) => sum + w + 2, 0);
  const labels = processes.map(owner);
  const labelWidth = Math.max(12, ...labels.map(label => label.length));
  const barWidth = Math.max(MIN_BAR, Math.min(MAX_BAR, options.width - used - labelWidth - 4));
  const rows = processes.map((p, i) => [
    ...fixed[i],
    bar(inRam(p) ?? 0, p.diskBacked.bytes, scale, barWidth),
    labels[i]
  ]);
  const header = [
    ...['PID', 'DISK-BACKED', 'IN RAM', 'PEAK', 'ALLOCS'],
    'RAM # / DISK .',
    'KERNEL/LABEL'
  ];
  return `${title}\n\n${formatTable(header, rows, new Set([0, 1, 2, 3, 4]))}`;
}

/** Seconds between frames from `--interval`, as ms; a usage error when not a positive number. */
export function parseInterval(text: string | undefined): number {
  if (text === undefined) {
    return 1000;
  }
  const seconds = /^\d+(\.\d+)?$/.test(text) ? Number(text) : NaN;
  if (!(seconds >= 0.1 && seconds <= 3600)) {
    throw new CliError(
      `top: --interval must be a number of seconds from 0.1 to 3600, got '${text}' ` +
        "(see 'bigmaac --help')",
      ExitCode.usage
    );
  }
  return Math.round(seconds * 1000);
}

/** Each process's disk-backed bytes in RAM; those that cannot answer are left out. */
async function measureAll(processes: ProcessInfo[]): Promise<Map<number, number>> {
  const measured = await Promise.all(
    processes.map(p =>
      measureResident(p.pid).then(
        bytes => [p.pid, bytes] as const,
        () => undefined
      )
    )
  );
  return new Map(measured.filter((entry): entry is readonly [number, number] => !!entry));
}

async function frame(intervalMs: number): Promise<string> {
  const width = process.stdout.columns ?? 100;
  const processes = listProcesses();
  return renderTop(processes, { width, intervalMs }, await measureAll(processes));
}

/** One frame when `once` or when stdout is not a terminal; else redraws until q or Ctrl-C. */
export function top(intervalText: string | undefined, once: boolean): Promise<void> {
  const intervalMs = parseInterval(intervalText);
  if (once || !process.stdout.isTTY) {
    return frame(intervalMs).then(text => void process.stdout.write(`${text}\n`));
  }
  return new Promise((done, fail) => {
    // Alternate screen and hidden cursor, restored however we leave.
    process.stdout.write('\x1b[?1049h\x1b[?25l');
    let drawing = false;
    let stopped = false;
    const draw = () => {
      // A frame waits for every process's answer: never start one before the last is out.
      if (drawing) {
        return;
      }
      drawing = true;
      frame(intervalMs)
        .then(text => {
          if (!stopped) {
            process.stdout.write(`\x1b[H\x1b[2J${text}\n`);
          }
        })
        .catch(error => quit(error))
        .finally(() => (drawing = false));
    };
    const timer = setInterval(draw, intervalMs);
    const onKey = (key: Buffer) => {
      if (key[0] === 0x71 || key[0] === 0x03) {
        quit();
      }
    };
    const quit = (error?: unknown) => {
      if (stopped) {
        return;
      }
      stopped = true;
      clearInterval(timer);
      process.stdin.off('data', onKey);
      if (process.stdin.isTTY) {
        process.stdin.setRawMode(false);
      }
      process.stdin.pause();
      process.stdout.write('\x1b[?25h\x1b[?1049l');
      if (error) {
        fail(error);
      } else {
        done();
      }
    };
    if (process.stdin.isTTY) {
      process.stdin.setRawMode(true);
      process.stdin.resume();
      process.stdin.on('data', onKey);
    }
    process.once('SIGINT', () => quit());
    process.once('SIGTERM', () => quit());
    draw();
  });
}
