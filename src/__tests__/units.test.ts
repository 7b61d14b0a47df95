/**
 * Sizes the CLI accepts and prints.
 */
import { formatBytes, formatTable, parseSize } from '../cli/units';

describe('parseSize', () => {
  it.each([
    ['4096', 4096],
    ['64M', 64 * 2 ** 20],
    ['64m', 64 * 2 ** 20],
    ['1.5G', 1.5 * 2 ** 30],
    ['2T', 2 * 2 ** 40],
    ['512KiB', 512 * 1024],
    ['32MB', 32 * 2 ** 20]
  ])('reads %s as %d bytes', (text, bytes) => {
    expect(parseSize(text)).toBe(bytes);
  });

  it.each(['', 'lots', '-1M', '0', '12Q', '1e9', 'M'])('refuses %j with a reason', text => {
    expect(() => parseSize(text)).toThrow(/invalid size/);
  });
});

describe('formatBytes', () => {
  it.each([
    [0, '0 B'],
    [1023, '1023 B'],
    [1024, '1.00 KiB'],
    [64 * 2 ** 20, '64.0 MiB'],
    [1.5 * 2 ** 30, '1.50 GiB'],
    [300 * 2 ** 30, '300 GiB'],
    // Just under a unit: rounding carries into it, never "1024 MiB".
    [2 ** 30 - 1, '1.00 GiB'],
    [1023.9 * 2 ** 20, '1.00 GiB'],
    [1023.4 * 2 ** 20, '1023 MiB'],
    [2 ** 20 - 1, '1.00 MiB'],
    // Just under a width: three significant digits, never "100.0" or "10.00".
    [99.96 * 2 ** 20, '100 MiB'],
    [9.999 * 2 ** 20, '10.0 MiB']
  ])('prints %d as %s', (bytes, text) => {
    expect(formatBytes(bytes)).toBe(text);
  });
});

describe('formatTable', () => {
  it('pads columns to the widest cell and aligns numbers right', () => {
    const text = formatTable(['PID', 'NAME'], [['7', 'a'], ['12345', 'bb']], new Set([0]));
    expect(text.split('\n')).toEqual(['  PID  NAME', '    7  a', '12345  bb']);
  });
});
