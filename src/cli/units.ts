/**
 * Sizes in and out: `--min-size 64M` in, "64.0 MiB" out. Suffixes are powers of 1024,
 * as the library reads them (docs/architecture.md §1).
 */
const SUFFIXES: Record<string, number> = { '': 0, K: 1, M: 2, G: 3, T: 4 };
const SIZE_PATTERN = /^(\d+(?:\.\d+)?)\s*([KMGT]?)(?:I?B)?$/i;

/** Bytes for a size like `4096`, `64M`, `1.5G` or `64MiB`; a RangeError says why not. */
export function parseSize(text: string): number {
  const match = SIZE_PATTERN.exec(text.trim());
  if (!match) {
    throw new RangeError(
      `invalid size '${text}': use bytes or a number with K, M, G or T (powers of 1024), e.g. 64M`
    );
  }
  const bytes = Math.floor(Number(match[1]) * 1024 ** SUFFIXES[match[2].toUpperCase()]);
  if (bytes < 1 || !Number.isSafeInteger(bytes)) {
    throw new RangeError(`invalid size '${text}': must be at least 1 byte and below 8 PiB`);
  }
  return bytes;
}

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];

/** "0 B", "512 B", "64.0 MiB", "1.50 GiB": three significant digits above a KiB. */
export function formatBytes(bytes: number): string {
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < UNITS.length - 1) {
    value /= 1024;
    unit += 1;
  }
  if (unit === 0) {
    return `${value} B`;
  }
  const digitsFor = (v: number) => (v >= 100 ? 0 : v >= 10 ? 1 : 2);
  // Rounding can carry into the next unit (1023.9 MiB is "1.00 GiB", not "1024 MiB")...
  if (Number(value.toFixed(digitsFor(value))) >= 1024 && unit < UNITS.length - 1) {
    value /= 1024;
    unit += 1;
  }
  // ...or into the next width (99.96 is "100", not "100.0").
  const digits = digitsFor(Number(value.toFixed(digitsFor(value))));
  return `${value.toFixed(digits)} ${UNITS[unit]}`;
}

/** "850 ms", "2.4 s". */
export function formatDuration(ms: number): string {
  return ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(1)} s`;
}

/** Rows as text with each column padded to its widest cell; `right` columns align right. */
export function formatTable(header: string[], rows: string[][], right: Set<number>): string {
  const widths = header.map((cell, i) => Math.max(cell.length, ...rows.map(row => row[i].length)));
  const line = (cells: string[]) =>
    cells
      .map((cell, i) => {
        if (i === cells.length - 1 && !right.has(i)) {
          return cell;
        }
        return right.has(i) ? cell.padStart(widths[i]) : cell.padEnd(widths[i]);
      })
      .join('  ')
      .trimEnd();
  return [header, ...rows].map(line).join('\n');
}

/** An age in its two largest units: "850 ms", "42 s", "3 min 4 s", "2 h 5 min", "3 d 4 h". */
export function formatAge(ms: number): string {
  if (ms < 1000) {
    return `${Math.max(0, Math.round(ms))} ms`;
  }
  const seconds = Math.floor(ms / 1000);
  const steps: [number, string][] = [
    [86400, 'd'],
    [3600, 'h'],
    [60, 'min'],
    [1, 's']
  ];
  const index = steps.findIndex(([size]) => seconds >= size);
  const [size, unit] = steps[index];
  const whole = Math.floor(seconds / size);
  if (index === steps.length - 1) {
    return `${whole} ${unit}`;
  }
  const [nextSize, nextUnit] = steps[index + 1];
  const rest = Math.floor((seconds % size) / nextSize);
  return rest > 0 ? `${whole} ${unit} ${rest} ${nextUnit}` : `${whole} ${unit}`;
}
