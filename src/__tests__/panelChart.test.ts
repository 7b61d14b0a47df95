/**
 * The chart's series and its scaling into SVG path data.
 */
import { chartPaths, TimeSeries } from '../panel/chart';

describe('TimeSeries', () => {
  it('keeps the newest samples up to its capacity, oldest first', () => {
    const series = new TimeSeries(3);
    for (let at = 1; at <= 5; at++) {
      series.push({ at, diskBacked: at, resident: null });
    }
    expect(series.points.map(p => p.at)).toEqual([3, 4, 5]);
    series.push({ at: 2, diskBacked: 0, resident: 0 });
    expect(series.points.map(p => p.at)).toEqual([3, 4, 5]);
  });
});

describe('chartPaths', () => {
  it('scales time to the width and bytes to the height, 0 at the bottom', () => {
    const paths = chartPaths(
      [
        { at: 0, diskBacked: 0, resident: 0 },
        { at: 50, diskBacked: 100, resident: 50 },
        { at: 100, diskBacked: 100, resident: 25 }
      ],
      200,
      40
    );
    expect(paths.max).toBe(100);
    expect(paths.diskBacked).toBe('M0,40L100,0L200,0');
    expect(paths.resident).toBe('M0,40L100,20L200,30');
  });

  it('breaks the resident line where residency was not measured', () => {
    const paths = chartPaths(
      [
        { at: 0, diskBacked: 10, resident: 10 },
        { at: 1, diskBacked: 10, resident: null },
        { at: 2, diskBacked: 10, resident: 5 }
      ],
      2,
      10
    );
    expect(paths.resident).toBe('M0,0M2,5');
  });

  it('draws nothing without samples, and a flat line at zero', () => {
    expect(chartPaths([], 10, 10)).toEqual({
      diskBacked: '',
      resident: '',
      containerUsage: '',
      containerLimit: '',
      max: 0
    });
    expect(
      chartPaths([{ at: 5, diskBacked: 0, resident: 0 }], 10, 10).diskBacked
    ).toBe('M0,10');
  });

  it('draws the container usage and its limit on the same scale, breaking where unknown', () => {
    const paths = chartPaths(
      [
        { at: 0, diskBacked: 10, resident: 5, containerUsage: 50, containerLimit: 100 },
        { at: 1, diskBacked: 10, resident: 5, containerUsage: null, containerLimit: 100 },
        { at: 2, diskBacked: 10, resident: 5, containerUsage: 75, containerLimit: null }
      ],
      2,
      100
    );
    expect(paths.max).toBe(100);
    expect(paths.diskBacked).toBe('M0,90L1,90L2,90');
    expect(paths.containerUsage).toBe('M0,50M2,25');
    expect(paths.containerLimit).toBe('M0,0L1,0');
  });
});
