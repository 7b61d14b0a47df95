/**
 * Why a BigMaac process disappeared. The agent is not the parent of the processes it
 * watches, so it cannot wait for their exit status; it judges from what they leave behind:
 *
 * - a process that exits normally unlinks its own segment (docs/segment.md, "Exit");
 * - a process killed by a signal leaves its segment behind (stale);
 * - a kill by the OOM killer also raises the `oom_kill` count of its memory cgroup.
 *
 * The OOM killer counts a kill when it sends SIGKILL, but a big process takes a while to tear
 * down its memory and still looks alive meanwhile. So the count when it is seen gone is
 * compared with the count OOM_WINDOW_MS earlier (or when it was first seen, if later): the
 * "around the disappearance" of docs/protocol.md.
 */
import { readdirSync } from 'fs';

import { ExitCause, ProcessExitedParams, ProcessInfo } from '../common/protocol';
import { MemoryCgroup, memoryCgroupOf, oomKillCount } from './cgroup';

/** Exits kept for `process/exits`. */
export const EXITS_CAPACITY = 100;
/** How long before its disappearance an OOM kill counts as the process's. */
export const OOM_WINDOW_MS = 5000;
/** OOM counts kept per cgroup: enough to look OOM_WINDOW_MS back. */
const READINGS_KEPT_MS = 2 * OOM_WINDOW_MS;

interface Watched {
  info: ProcessInfo;
  cgroup: MemoryCgroup | undefined;
  /** When the agent first saw it, and its cgroup's OOM count then. */
  firstSeenAt: number;
  firstCount: number | undefined;
}

interface Reading {
  at: number;
  count: number | undefined;
}

export class ExitTracker {
  private readonly watched = new Map<number, Watched>();
  /** Recent OOM kill counts per cgroup path, oldest first. */
  private readonly readings = new Map<string, Reading[]>();
  private readonly exits: ProcessExitedParams[] = [];

  constructor(
    private readonly segmentDir: () => string,
    private readonly onExit: (exit: ProcessExitedParams) => void
  ) {}

  /** Lists the processes through `list` and reports those gone since the last sample. */
  sample(list: () => ProcessInfo[]): ProcessInfo[] {
    const segments = this.segmentPids();
    this.readOomCounts();
    const processes = list();
    const at = Date.now();
    const current = new Map(processes.map(info => [info.pid, info]));
    for (const [pid, entry] of this.watched) {
      const now = current.get(pid);
      if (now?.startTime === entry.info.startTime) {
        continue;
      }
      this.watched.delete(pid);
      // A live process with the same pid owns the segment named after it now.
      this.record(this.judge(entry, now === undefined ? segments : 'reused', at));
    }
    for (const info of processes) {
      const entry = this.watched.get(info.pid);
      if (entry) {
        entry.info = info;
        continue;
      }
      const cgroup = memoryCgroupOf(info.pid);
      const firstCount = cgroup ? oomKillCount(cgroup) : undefined;
      this.watched.set(info.pid, { info, cgroup, firstSeenAt: at, firstCount });
    }
    this.forgetUnwatched();
    return processes;
  }

  /** Recent exits, oldest first; only those seen after `sinceMs` when given. */
  recent(sinceMs?: number): ProcessExitedParams[] {
    return sinceMs === undefined ? [...this.exits] : this.exits.filter(exit => exit.at > sinceMs);
  }

  private record(exit: ProcessExitedParams): void {
    this.exits.push(exit);
    if (this.exits.length > EXITS_CAPACITY) {
      this.exits.shift();
    }
    this.onExit(exit);
  }

  /**
   * `segments` is 'reused' when another BigMaac process has the pid now: the segment named
   * after it is the newcomer's, so it says nothing about how the old one ended.
   */
  private judge(
    entry: Watched,
    segments: Set<number> | undefined | 'reused',
    at: number
  ): ProcessExitedParams {
    const { pid, startTime, kernelId } = entry.info;
    const base = { pid, startTime, ...(kernelId ? { kernelId } : {}), at };
    const verdict = (cause: ExitCause, detail: string) => ({ ...base, cause, detail });
    if (segments === undefined) {
      return verdict('unknown', 'the segment directory could not be read');
    }
    if (segments !== 'reused' && !segments.has(pid)) {
      return verdict('exited', 'it removed its own stats segment, as a normal exit does');
    }
    const cgroup = entry.cgroup;
    const before = cgroup ? this.baseline(entry, cgroup, at) : undefined;
    const after = cgroup ? oomKillCount(cgroup) : undefined;
    const ooms = cgroup && before !== undefined && after !== undefined ? after - before : 0;
    if (segments === 'reused') {
      const reused = 'its pid was taken by another BigMaac process before the agent looked';
      return ooms > 0
        ? verdict(
            'oom-killed',
            `${reused}; its memory cgroup ${cgroup!.path} counted ${ooms} new OOM kill(s)`
          )
        : verdict('unknown', `${reused}, so whether it cleaned up cannot be told`);
    }
    if (ooms > 0) {
      return verdict(
        'oom-killed',
        `its memory cgroup ${cgroup!.path} counted ${ooms} new OOM kill(s) ` +
          'while it disappeared without cleaning up'
      );
    }
    const why =
      before === undefined || after === undefined
        ? 'its memory cgroup does not count OOM kills here'
        : 'its memory cgroup counted no OOM kill';
    return verdict('killed', `it died without cleaning up (a signal such as SIGKILL); ${why}`);
  }

  /** Pids with a segment file now; undefined when the directory cannot be read. */
  private segmentPids(): Set<number> | undefined {
    try {
      const names = readdirSync(this.segmentDir());
      return new Set(names.filter(n => /^\d+\.seg$/.test(n)).map(n => parseInt(n, 10)));
    } catch {
      return undefined;
    }
  }

  /** The cgroup's OOM count OOM_WINDOW_MS before `at`, or at first sight if later. */
  private baseline(entry: Watched, cgroup: MemoryCgroup, at: number): number | undefined {
    const readings = this.readings.get(cgroup.path) ?? [];
    const before = readings.filter(reading => reading.at <= at - OOM_WINDOW_MS).pop();
    return before && before.at > entry.firstSeenAt ? before.count : entry.firstCount;
  }

  /** Records the OOM kill count of every cgroup a watched process is in. */
  private readOomCounts(): void {
    const now = Date.now();
    const seen = new Set<string>();
    for (const { cgroup } of this.watched.values()) {
      if (!cgroup || seen.has(cgroup.path)) {
        continue;
      }
      seen.add(cgroup.path);
      const readings = this.readings.get(cgroup.path) ?? [];
      readings.push({ at: now, count: oomKillCount(cgroup) });
      // Keep one reading older than the window, so there is always a baseline for it.
      while (readings.length > 1 && readings[1].at < now - READINGS_KEPT_MS) {
        readings.shift();
      }
      this.readings.set(cgroup.path, readings);
    }
  }

  /** Drops the readings of cgroups no watched process is in any more. */
  private forgetUnwatched(): void {
    const paths = new Set([...this.watched.values()].map(entry => entry.cgroup?.path));
    for (const path of this.readings.keys()) {
      if (!paths.has(path)) {
        this.readings.delete(path);
      }
    }
  }
}
