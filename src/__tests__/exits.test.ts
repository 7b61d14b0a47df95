/**
 * How the exit tracker judges a disappearance, on a real segment directory. The listings
 * are written by hand: a pid taken over by another process cannot be arranged on demand.
 */
import { mkdtempSync, rmSync, unlinkSync, writeFileSync } from 'fs';
import { tmpdir } from 'os';
import { join } from 'path';

import { ProcessExitedParams, ProcessInfo } from '../common/protocol';
import { ExitTracker } from '../agent/exits';

/** Above any pid this machine hands out, so no real process (and no cgroup) is found. */
const PID = 4194000;

function info(startTime: number): ProcessInfo {
  return {
    pid: PID,
    startTime,
    uid: 0,
    kernelId: 'jest-kernel-exits',
    label: '',
    command: 'python',
    swapDir: '/tmp',
    diskBacked: { bytes: 1 << 20, count: 1 },
    peakBytes: 1 << 20,
    updatedAt: Date.now()
  };
}

let dir: string;
let reported: ProcessExitedParams[];
let tracker: ExitTracker;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'bigmaac-jest-exits-'));
  reported = [];
  tracker = new ExitTracker(
    () => dir,
    exit => reported.push(exit)
  );
});

afterEach(() => rmSync(dir, { recursive: true, force: true }));

const segment = () => join(dir, `${PID}.seg`);

describe('ExitTracker', () => {
  it('says exited when the segment went with the process', () => {
    writeFileSync(segment(), '');
    tracker.sample(() => [info(100)]);
    unlinkSync(segment());
    tracker.sample(() => []);
    expect(reported.map(e => [e.startTime, e.cause])).toEqual([[100, 'exited']]);
  });

  it('says killed when the process left its segment behind', () => {
    writeFileSync(segment(), '');
    tracker.sample(() => [info(100)]);
    tracker.sample(() => []);
    expect(reported.map(e => [e.startTime, e.cause])).toEqual([[100, 'killed']]);
  });

  it('does not call a process killed because a newcomer with its pid has a segment', () => {
    writeFileSync(segment(), '');
    tracker.sample(() => [info(100)]);
    // It exited (its segment went), and another BigMaac process got the pid and wrote its
    // own segment under the same name before the next tick.
    tracker.sample(() => [info(200)]);
    expect(reported).toHaveLength(1);
    expect(reported[0]).toMatchObject({ pid: PID, startTime: 100, cause: 'unknown' });
    expect(reported[0].detail).toMatch(/pid was taken by another BigMaac process/);
    // The newcomer is watched in its turn.
    unlinkSync(segment());
    tracker.sample(() => []);
    expect(reported.map(e => [e.startTime, e.cause])).toEqual([
      [100, 'unknown'],
      [200, 'exited']
    ]);
  });
});
