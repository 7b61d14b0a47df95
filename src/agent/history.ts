/**
 * Per-process samples over time, for plots: a bounded ring buffer per process, so the
 * agent's memory stays flat however long it runs.
 */
import { HistorySample } from '../common/protocol';

export class SampleRing {
  private readonly samples: HistorySample[] = [];
  /** Index of the oldest sample once the ring is full. */
  private head = 0;

  constructor(readonly capacity: number) {}

  push(sample: HistorySample): void {
    if (this.samples.length < this.capacity) {
      this.samples.push(sample);
      return;
    }
    this.samples[this.head] = sample;
    this.head = (this.head + 1) % this.capacity;
  }

  /** Samples taken after `sinceMs` (all when undefined), oldest first. */
  since(sinceMs?: number): HistorySample[] {
    const ordered = [...this.samples.slice(this.head), ...this.samples.slice(0, this.head)];
    if (sinceMs === undefined) {
      return ordered;
    }
    return ordered.filter(sample => sample.at > sinceMs);
  }
}
