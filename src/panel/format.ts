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
