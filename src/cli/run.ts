/**
 * `bigmaac run [--min-size SIZE] -- CMD ARGS...`: runs a command with the library
 * preloaded and exits the way the command did.
 */
import { spawn } from 'child_process';
import { accessSync, constants, statSync } from 'fs';
import { constants as osConstants } from 'os';
import { join, resolve } from 'path';

import { CliError, ExitCode, usageError } from './errors';
import { parseSize } from './units';

export interface RunOptions {
  minSize?: number;
  command: string[];
}

/** Splits `run`'s arguments: options first, then `--` (optional) and the command. */
export function parseRunArguments(args: string[]): RunOptions {
  const options: RunOptions = { command: [] };
  let i = 0;
  while (i < args.length) {
    const arg = args[i];
    if (arg === '--') {
      i += 1;
      break;
    }
    if (!arg.startsWith('-')) {
      break;
    }
    const [name, inline] = arg.split(/=(.*)/s, 2);
    if (name !== '--min-size') {
      throw usageError(`run: unknown option '${name}'`);
    }
    const value = inline ?? args[i + 1];
    if (value === undefined) {
      throw usageError('run: --min-size needs a size, e.g. --min-size 64M');
    }
    try {
      options.minSize = parseSize(value);
    } catch (error) {
      throw new CliError(`run: ${(error as Error).message}`, ExitCode.usage);
    }
    i += inline === undefined ? 2 : 1;
  }
  options.command = args.slice(i);
  if (options.command.length === 0) {
    throw usageError('run: no command given; usage: bigmaac run [--min-size SIZE] -- CMD ARGS...');
  }
  return options;
}

/** The preload library: BIGMAAC_LIBRARY, else libbigmaac.so next to this bundle. */
export function findLibrary(env: NodeJS.ProcessEnv = process.env): string {
  const path = env.BIGMAAC_LIBRARY
    ? resolve(env.BIGMAAC_LIBRARY)
    : join(__dirname, 'libbigmaac.so');
  let isFile = false;
  try {
    isFile = statSync(path).isFile();
  } catch {
    isFile = false;
  }
  if (!isFile) {
    const origin = env.BIGMAAC_LIBRARY ? 'BIGMAAC_LIBRARY' : 'the default location';
    throw new CliError(
      `the BigMaac library is missing: ${path} (from ${origin}) does not exist; ` +
        'build it with `make native` or set BIGMAAC_LIBRARY',
      ExitCode.notInstalled
    );
  }
  try {
    accessSync(path, constants.R_OK);
  } catch {
    throw new CliError(`the BigMaac library ${path} is not readable`, ExitCode.notInstalled);
  }
  return path;
}

/** The child's environment: the library appended to LD_PRELOAD, the threshold if given. */
export function childEnvironment(
  library: string,
  minSize: number | undefined,
  env: NodeJS.ProcessEnv = process.env
): NodeJS.ProcessEnv {
  const preload = (env.LD_PRELOAD ?? '').split(/[:\s]+/).filter(Boolean);
  if (!preload.includes(library)) {
    preload.push(library);
  }
  const child: NodeJS.ProcessEnv = { ...env, LD_PRELOAD: preload.join(':') };
  if (minSize !== undefined) {
    child.BIGMAAC_MIN_BIGMAAC_SIZE = String(minSize);
  }
  return child;
}

/** Signals a terminal or a supervisor sends to us that the command must get too. */
const FORWARDED_SIGNALS: NodeJS.Signals[] = ['SIGTERM', 'SIGHUP', 'SIGQUIT', 'SIGUSR1', 'SIGUSR2'];

/** Runs the command; resolves to never (the process exits as the command did). */
export function run(args: string[]): Promise<never> {
  const options = parseRunArguments(args);
  const library = findLibrary();
  const [file, ...rest] = options.command;
  const child = spawn(file, rest, {
    stdio: 'inherit',
    env: childEnvironment(library, options.minSize)
  });
  // Ctrl-C reaches the command directly (same process group); we wait for its verdict.
  process.on('SIGINT', () => undefined);
  for (const signal of FORWARDED_SIGNALS) {
    process.on(signal, () => child.kill(signal));
  }
  return new Promise((_resolve, reject) => {
    child.on('error', (error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT') {
        reject(new CliError(`run: command not found: ${file}`, ExitCode.notFound));
      } else {
        const message = `run: cannot execute ${file}: ${error.message}`;
        reject(new CliError(message, ExitCode.notExecutable));
      }
    });
    child.on('exit', (code, signal) => {
      if (signal) {
        dieBy(signal);
      }
      process.exit(code ?? ExitCode.failure);
    });
  });
}

/** Ends this process by `signal`, so our parent sees what the command's death was. */
function dieBy(signal: NodeJS.Signals): never {
  process.removeAllListeners(signal);
  process.kill(process.pid, signal);
  // Signals Node cannot die of (it ignores or handles them): report like a shell.
  process.exit(128 + osConstants.signals[signal]);
}
