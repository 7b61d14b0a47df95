/**
 * Exit codes of `bigmaac` (docs/cli.md) and the error that carries one.
 */
export const ExitCode = {
  ok: 0,
  /** Any failure not listed below. */
  failure: 1,
  /** Bad command line: unknown command or option, bad pid, bad size. */
  usage: 2,
  /** The pid is not a process running under BigMaac. */
  noProcess: 3,
  /** The process belongs to someone else. */
  permission: 4,
  /** The library or the addon is missing or cannot be loaded. */
  notInstalled: 5,
  /** A page-out of that process is already running. */
  busy: 6,
  /** `run`: the command was not found or could not be executed (as in a shell). */
  notExecutable: 126,
  notFound: 127
} as const;

/** A failure the CLI reports as one line on stderr before exiting with `exitCode`. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: number
  ) {
    super(message);
    this.name = 'CliError';
  }
}

export function usageError(message: string): CliError {
  return new CliError(`${message} (see 'bigmaac --help')`, ExitCode.usage);
}

const ADDON_EXIT_CODES: Record<string, number> = {
  ENOENT_PROCESS: ExitCode.noProcess,
  EPERM: ExitCode.permission,
  ENOADDON: ExitCode.notInstalled,
  EBUSY_PAGEOUT: ExitCode.busy
};

/** The CliError for a failure of the addon or the agent's modules. */
export function fromAddonError(error: unknown): CliError {
  if (error instanceof CliError) {
    return error;
  }
  // Checked by shape: errors thrown by the addon may come from another realm.
  const { code, message } = (error ?? {}) as { code?: unknown; message?: unknown };
  const text = typeof message === 'string' ? message : String(error);
  const exitCode = typeof code === 'string' ? ADDON_EXIT_CODES[code] : undefined;
  return new CliError(text, exitCode ?? ExitCode.failure);
}
