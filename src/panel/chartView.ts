/**
 * A small live chart of disk-backed bytes against resident bytes over time
 * (and, for the whole container, its memory cgroup's usage and limit), drawn
 * as SVG paths. Colours come from CSS classes (style/base.css), so
 * the chart follows the theme; no charting library is needed for two lines.
 */

import { chartPaths, IChartPaths, IChartPoint } from './chart';

const SVG_NS = 'http://www.w3.org/2000/svg';
const WIDTH = 200;
const HEIGHT = 40;

/**
 * An SVG chart node, updated in place by `update`.
 */
export class ChartView {
  constructor(label: string) {
    this.node = document.createElementNS(SVG_NS, 'svg');
    this.node.setAttribute('class', 'jp-BigmaacChart');
    this.node.setAttribute('viewBox', `0 0 ${WIDTH} ${HEIGHT}`);
    this.node.setAttribute('preserveAspectRatio', 'none');
    this.node.setAttribute('role', 'img');
    this.node.setAttribute('aria-label', label);
    this._disk.setAttribute('class', 'jp-BigmaacChart-diskBacked');
    this._resident.setAttribute('class', 'jp-BigmaacChart-resident');
    this._usage.setAttribute('class', 'jp-BigmaacChart-containerUsage');
    this._limit.setAttribute('class', 'jp-BigmaacChart-containerLimit');
    for (const path of [this._disk, this._resident, this._usage, this._limit]) {
      path.setAttribute('fill', 'none');
      path.setAttribute('vector-effect', 'non-scaling-stroke');
    }
    this.node.append(this._limit, this._usage, this._resident, this._disk);
  }

  readonly node: SVGSVGElement;

  update(points: readonly IChartPoint[]): IChartPaths {
    const paths = chartPaths(points, WIDTH, HEIGHT);
    setPath(this._disk, paths.diskBacked);
    setPath(this._resident, paths.resident);
    setPath(this._usage, paths.containerUsage);
    setPath(this._limit, paths.containerLimit);
    return paths;
  }

  private _disk = document.createElementNS(SVG_NS, 'path');
  private _resident = document.createElementNS(SVG_NS, 'path');
  private _usage = document.createElementNS(SVG_NS, 'path');
  private _limit = document.createElementNS(SVG_NS, 'path');
}

function setPath(path: SVGPathElement, d: string): void {
  if (path.getAttribute('d') !== d) {
    path.setAttribute('d', d);
  }
}
