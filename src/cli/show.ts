/**
 * `bigmaac show PID [--json]`: one process in detail, with its counters and its largest
 * disk-backed allocations.
 */
import { ProcessDetails, ProcessGetResult } from '../common/protocol';
import { getProcessWithResidency } from '../agent/processes';
import { parsePid } from './pageout';
import { formatAge, formatBytes, formatTable } from './units';

/** How many allocations the human view lists; `--json` gives all the agent reports. */
const SHOWN_ALLOCATIONS = 20;

function plural(count: number, word: string): string {
  return `${count} ${word}${count === 1 ? '' : 's'}`;
}

function summary(p: ProcessDetails, now: number): string[] {
  const who = [p.kernelId ? `kernel ${p.kernelId}` : '', p.label].filter(Boolean).join(', ');
  const c = p.counters;
  const lines = [
    `Process ${p.pid}${who ? ` (${who})` : ''}`,
    `  command      ${p.command || '?'}`,
    `  swap dir     ${p.swapDir} (${p.swapFs || 'unknown filesystem'})`,
    `  threshold    ${formatBytes(p.minBigSize)}`,
    `  disk-backed  ${formatBytes(p.diskBacked.bytes)} in ` +
      `${plural(p.diskBacked.count, 'allocation')} (peak ${formatBytes(p.peakBytes)})`,
    `  on disk      ${formatBytes(c.diskReserved)} reserved`,
    `  running      ${formatAge(now - p.createdAt)} since its first disk-backed allocation`,
    `  counters     ${c.allocs} allocs, ${c.frees} frees, ${c.reallocs} reallocs, ` +
      `${c.pageouts} page-outs, ${c.fallbacks} fallbacks to RAM, ${c.failures} failures`
  ];
  if (p.residency) {
    const r = p.residency;
    const dirty = r.dirtyKnown ? `, ${formatBytes(r.dirty)} dirty` : '';
    lines.splice(
      5,
      0,
      `  in RAM       ${formatBytes(r.resident)} of ${formatBytes(p.diskBacked.bytes)}${dirty} ` +
        '(a page-out gives it back)'
    );
  } else if (p.residency === null) {
    lines.splice(5, 0, '  in RAM       unknown (the process did not answer)');
  }
  if (p.swapOnRam) {
    lines.push(
      `  warning      the swap directory is on ${p.swapFs} (RAM): disk-backing saves nothing there`
    );
  }
  return lines;
}

function allocationsTable(p: ProcessDetails, now: number): string[] {
  if (p.allocationsTotal === 0) {
    return ['No live disk-backed allocations.'];
  }
  const shown = p.allocations.slice(0, SHOWN_ALLOCATIONS);
  const rows = shown.map(a => [
    formatBytes(a.size),
    a.resident === undefined ? '?' : formatBytes(a.resident),
    formatAge(now - a.createdAt),
    a.tier,
    `0x${a.address.toString(16)}`
  ]);
  const header = ['SIZE', 'IN RAM', 'AGE', 'TIER', 'ADDRESS'];
  const lines = [formatTable(header, rows, new Set([0, 1, 2]))];
  if (p.allocationsTotal > shown.length) {
    lines.push(`(the ${shown.length} largest of ${p.allocationsTotal}; --json lists up to 1024)`);
  }
  return lines;
}

/** The human view of `process/get`'s result. */
export function formatProcessDetails(p: ProcessDetails, now = Date.now()): string {
  return [...summary(p, now), '', ...allocationsTable(p, now)].join('\n');
}

export async function show(pidText: string | undefined, json: boolean): Promise<void> {
  const pid = parsePid(pidText, 'show', 'bigmaac show PID [--json]');
  const details = await getProcessWithResidency(pid);
  if (json) {
    const result: ProcessGetResult = { process: details };
    process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
    return;
  }
  process.stdout.write(`${formatProcessDetails(details)}\n`);
}
