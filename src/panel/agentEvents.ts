/**
 * Checks of what the agent sends before the panel trusts it: residency in
 * `process/get` (protocol 1.1), `pageout/finished` and `process/exited`.
 * An older agent leaves them out, and the panel then shows "not measured"
 * rather than misreading them.
 */

import type {
  PageoutFinishedParams,
  ProcessExitedParams,
  ProcessResidency
} from '../common/protocol';

/** The residency of a `process/get` answer, or `null` when it has none. */
export function residencyOf(process: any): ProcessResidency | null {
  const r = process?.residency;
  return r && Number.isFinite(r.resident) && Number.isFinite(r.dirty)
    ? {
        resident: r.resident,
        dirty: r.dirty,
        dirtyKnown: r.dirtyKnown !== false,
        measuredAt: Number(r.measuredAt) || 0
      }
    : null;
}

export function isPageoutFinished(value: any): value is PageoutFinishedParams {
  return (
    !!value &&
    Number.isInteger(value.pid) &&
    typeof value.ok === 'boolean' &&
    typeof value.reason === 'string'
  );
}

export function isProcessExited(value: any): value is ProcessExitedParams {
  return (
    !!value && Number.isInteger(value.pid) && typeof value.cause === 'string'
  );
}
