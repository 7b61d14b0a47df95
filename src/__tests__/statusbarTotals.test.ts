/**
 * The status bar's totals over the panel's rows.
 */
import { totals } from '../statusbar/totals';

const MIB = 2 ** 20;

describe('totals', () => {
  it('is zero without kernels', () => {
    expect(totals([])).toEqual({ kernels: 0, diskBacked: 0, resident: 0 });
  });

  it('sums disk-backed and resident bytes', () => {
    expect(
      totals([
        { diskBacked: { bytes: 64 * MIB }, residency: { resident: 16 * MIB } },
        { diskBacked: { bytes: 32 * MIB }, residency: { resident: 32 * MIB } },
        { diskBacked: { bytes: 0 }, residency: null }
      ])
    ).toEqual({ kernels: 3, diskBacked: 96 * MIB, resident: 48 * MIB });
  });

  it('has no resident total while a disk-backed kernel is unmeasured', () => {
    expect(
      totals([
        { diskBacked: { bytes: 64 * MIB }, residency: null },
        { diskBacked: { bytes: 32 * MIB }, residency: { resident: MIB } }
      ])
    ).toEqual({ kernels: 2, diskBacked: 96 * MIB, resident: null });
  });
});
