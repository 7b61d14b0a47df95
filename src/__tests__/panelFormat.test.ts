/**
 * The panel's size, duration, age and share formatting.
 */
import {
  formatAge,
  formatBytes,
  formatDuration,
  formatPercent
} from '../panel/format';

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

describe('formatAge and formatPercent', () => {
  it('formats ages coarsely', () => {
    expect(formatAge(4_999)).toBe('4 s');
    expect(formatAge(125_000)).toBe('2 min');
    expect(formatAge(3 * 3600_000 + 5)).toBe('3 h');
    expect(formatAge(49 * 3600_000)).toBe('2 d');
    expect(formatAge(-5)).toBe('0 s');
    expect(formatAge(NaN)).toBe('—');
  });

  it('formats shares as whole percentages, clamped', () => {
    expect(formatPercent(1, 3)).toBe('33%');
    expect(formatPercent(5, 4)).toBe('100%');
    expect(formatPercent(1, 0)).toBe('—');
  });
});
