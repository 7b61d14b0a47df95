/**
 * Turns failures into the protocol's documented errors (docs/protocol.md, "Errors").
 */
import { ResponseError } from 'vscode-jsonrpc/node';

import { ErrorCodes, ErrorData, ErrorName } from '../common/protocol';
import { AddonLoadError, isAddonError } from './addon';

/** A protocol error whose `data.code` names it. */
export function protocolError(
  code: number,
  name: ErrorName,
  message: string
): ResponseError<ErrorData> {
  return new ResponseError<ErrorData>(code, message, { code: name });
}

export function invalidParams(message: string): ResponseError<ErrorData> {
  return protocolError(ErrorCodes.InvalidParams, 'EINVAL', message);
}

const ADDON_CODES: Record<string, [number, ErrorName]> = {
  ENOENT_PROCESS: [ErrorCodes.UnknownProcess, 'ENOENT_PROCESS'],
  EPERM: [ErrorCodes.PermissionDenied, 'EPERM'],
  EINCOMPATIBLE: [ErrorCodes.IncompatibleSegment, 'EINCOMPATIBLE'],
  EBUSY_PAGEOUT: [ErrorCodes.PageoutRunning, 'EBUSY_PAGEOUT'],
  ECANCELLED: [ErrorCodes.RequestCancelled, 'ECANCELLED'],
  // A segment that kept changing while read: the process is alive but busy; say so
  // as an internal error so the client may retry.
  ETORN: [ErrorCodes.InternalError, 'ETORN'],
  // The process is alive but did not answer (stopped, or its control thread is stuck).
  ETIMEDOUT: [ErrorCodes.InternalError, 'ETIMEDOUT']
};

/** The protocol error for anything a handler threw. */
export function toResponseError(error: unknown): ResponseError<ErrorData> {
  if (error instanceof ResponseError) {
    return error;
  }
  if (error instanceof AddonLoadError) {
    return protocolError(ErrorCodes.InternalError, 'EINTERNAL', error.message);
  }
  if (isAddonError(error) && error.code in ADDON_CODES) {
    const [code, name] = ADDON_CODES[error.code];
    return protocolError(code, name, error.message);
  }
  const message = error instanceof Error ? error.message : String(error);
  return protocolError(ErrorCodes.InternalError, 'EINTERNAL', `internal error: ${message}`);
}
