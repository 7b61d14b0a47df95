/**
 * Human-readable sizes and durations for the BigMaac panel.
 *
 * Sizes use powers of 1024 with IEC units, matching the sizes users type for
 * `BIGMAAC_MIN_BIGMAAC_SIZE` (where `64M` means 64 MiB).
 */

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];

/**
 * Format a byte count, e.g. `0 B`, `512 B`, `64.0 MiB`, `1.50 GiB`.
 *
 * Values below 10 in a unit get two decimals so small changes stay visible;
 * larger ones get one.
 */
export function formatBytes(bytes: number): string {
  if (!Number.isFinite(bytes) || bytes < 0) {
    return '—';
  }
  if (bytes < 1024) {
    return `${Math.round(bytes)} B`;
  }
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < UNITS.length - 1) {
    value /= 1024;
    unit++;
  }
  const digits = value < 10 ? 2 : 1;
  return `${value.toFixed(digits)} ${UNITS[unit]}`;
}

/**
 * Format a duration given in milliseconds, e.g. `4 ms`, `0.21 s`, `12.5 s`.
 */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) {
    return '—';
  }
  if (ms < 10) {
    return `${Math.round(ms)} ms`;
  }
  const seconds = ms / 1000;
  return seconds < 10 ? `${seconds.toFixed(2)} s` : `${seconds.toFixed(1)} s`;
}

/**
 * Format an age given in milliseconds, coarsely: `5 s`, `12 min`, `3 h`, `2 d`.
 */
export function formatAge(ms: number): string {
  if (!Number.isFinite(ms)) {
    return '—';
  }
  const seconds = Math.max(0, Math.floor(ms / 1000));
  if (seconds < 60) {
    return `${seconds} s`;
  }
  if (seconds < 3600) {
    return `${Math.floor(seconds / 60)} min`;
  }
  if (seconds < 86400) {
    return `${Math.floor(seconds / 3600)} h`;
  }
  return `${Math.floor(seconds / 86400)} d`;
}

/** A share as a whole percentage, e.g. `42%`; `—` when the total is 0 or unknown. */
export function formatPercent(part: number, total: number): string {
  if (!Number.isFinite(part) || !Number.isFinite(total) || total <= 0) {
    return '—';
  }
  return `${Math.round(Math.min(1, Math.max(0, part / total)) * 100)}%`;
}
