/**
 * The panel's size and duration formatting.
 */
import { formatBytes, formatDuration } from '../panel/format';

describe('formatBytes', () => {
  it.each([
    [0, '0 B'],
    [512, '512 B'],
    [1023, '1023 B'],
    [1024, '1.00 KiB'],
    [1536, '1.50 KiB'],
    [64 * 2 ** 20, '64.0 MiB'],
    [64 * 2 ** 20 + 4096, '64.0 MiB'],
    [1.5 * 2 ** 30, '1.50 GiB'],
    [3 * 2 ** 40, '3.00 TiB'],
    [2 ** 60, '1024.0 PiB']
  ])('formats %d bytes as %s', (bytes, text) => {
    expect(formatBytes(bytes)).toBe(text);
  });

  it.each([-1, NaN, Infinity])('shows a dash for %d', bytes => {
    expect(formatBytes(bytes)).toBe('—');
  });
});

describe('formatDuration', () => {
  it.each([
    [0, '0 ms'],
    [4.4, '4 ms'],
    [210, '0.21 s'],
    [1234, '1.23 s'],
    [12_500, '12.5 s']
  ])('formats %d ms as %s', (ms, text) => {
    expect(formatDuration(ms)).toBe(text);
  });

  it('shows a dash for a negative duration', () => {
    expect(formatDuration(-5)).toBe('—');
  });
});
