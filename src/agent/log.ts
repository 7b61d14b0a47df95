/**
 * Diagnostics go to stderr: in agent mode stdout carries nothing but protocol.
 */
let verbose = process.env.BIGMAAC_VERBOSE === '1';

export function setVerbose(on: boolean): void {
  verbose = on;
}

export function log(message: string): void {
  process.stderr.write(`bigmaac agent: ${message}\n`);
}

export function debug(message: string): void {
  if (verbose) {
    log(message);
  }
}
