/**
 * The per-process history ring: bounded, oldest first, filtered by time.
 */
import { SampleRing } from '../agent/history';

function sample(at: number) {
  return { at, diskBackedBytes: at * 10, diskBackedCount: 1, peakBytes: at * 10 };
}

describe('SampleRing', () => {
  it('keeps samples oldest first until full', () => {
    const ring = new SampleRing(4);
    [1, 2, 3].forEach(at => ring.push(sample(at)));
    expect(ring.since().map(s => s.at)).toEqual([1, 2, 3]);
  });

  it('drops the oldest samples once full', () => {
    const ring = new SampleRing(3);
    [1, 2, 3, 4, 5, 6, 7].forEach(at => ring.push(sample(at)));
    expect(ring.since().map(s => s.at)).toEqual([5, 6, 7]);
  });

  it('returns only the samples taken after sinceMs', () => {
    const ring = new SampleRing(3);
    [1, 2, 3, 4].forEach(at => ring.push(sample(at)));
    expect(ring.since(2).map(s => s.at)).toEqual([3, 4]);
    expect(ring.since(4)).toEqual([]);
  });
});
