/**
 * The data of the panel's live charts: disk-backed bytes against resident
 * bytes over time, and their scaling into SVG path data (`chartView.ts`
 * draws them). No DOM here, so the model can keep series without a page.
 */

/** One sample of a kernel or of the whole container. */
export interface IChartPoint {
  /** ms since the Unix epoch. */
  at: number;
  /** Disk-backed bytes (mapped from swap files). */
  diskBacked: number;
  /** Of those, bytes in RAM; `null` when not measured. */
  resident: number | null;
  /** The container's memory cgroup: charged bytes and limit (`null`: unknown). */
  containerUsage?: number | null;
  containerLimit?: number | null;
}

/** A bounded series of samples, oldest first. */
export class TimeSeries {
  constructor(readonly capacity = 150) {}

  get points(): readonly IChartPoint[] {
    return this._points;
  }

  /** Add a sample; a sample older than the last one is ignored. */
  push(point: IChartPoint): void {
    const last = this._points[this._points.length - 1];
    if (last && point.at < last.at) {
      return;
    }
    this._points.push(point);
    if (this._points.length > this.capacity) {
      this._points.splice(0, this._points.length - this.capacity);
    }
  }

  private _points: IChartPoint[] = [];
}

/** The chart's lines as SVG path data, scaled to `width` × `height`. */
export interface IChartPaths {
  diskBacked: string;
  resident: string;
  /** The container's usage and its limit; empty where they are not known. */
  containerUsage: string;
  containerLimit: string;
  /** The largest value plotted, bytes (the top of the chart). */
  max: number;
}

/**
 * Scale the points into path data: time on x (oldest at the left edge),
 * bytes on y (0 at the bottom). An unknown value breaks its line.
 */
export function chartPaths(
  points: readonly IChartPoint[],
  width: number,
  height: number
): IChartPaths {
  if (points.length === 0) {
    return {
      diskBacked: '',
      resident: '',
      containerUsage: '',
      containerLimit: '',
      max: 0
    };
  }
  const first = points[0].at;
  const span = Math.max(1, points[points.length - 1].at - first);
  let max = 0;
  for (const p of points) {
    max = Math.max(
      max,
      p.diskBacked,
      p.resident ?? 0,
      p.containerUsage ?? 0,
      p.containerLimit ?? 0
    );
  }
  const top = Math.max(1, max);
  const x = (at: number) => round(((at - first) / span) * width);
  const y = (bytes: number) => round(height - (bytes / top) * height);
  const line = (value: (p: IChartPoint) => number | null | undefined) => {
    let d = '';
    let penDown = false;
    for (const p of points) {
      const bytes = value(p);
      if (bytes === null || bytes === undefined) {
        penDown = false;
        continue;
      }
      d += `${penDown ? 'L' : 'M'}${x(p.at)},${y(bytes)}`;
      penDown = true;
    }
    return d;
  };
  return {
    diskBacked: line(p => p.diskBacked),
    resident: line(p => p.resident),
    containerUsage: line(p => p.containerUsage),
    containerLimit: line(p => p.containerLimit),
    max
  };
}

function round(value: number): number {
  return Math.round(value * 10) / 10;
}
