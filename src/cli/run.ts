/**
 * `bigmaac run [--min-size SIZE] [--fry-size SIZE] [--dir DIR] -- CMD ARGS...`: runs a
 * command with the library preloaded and exits the way the command did.
 */
import { spawn } from 'child_process';
import { accessSync, constants, existsSync, statfsSync, statSync } from 'fs';
import { constants as osConstants } from 'os';
import { dirname, join, resolve } from 'path';

import { CliError, ExitCode, usageError } from './errors';
import { parseSize } from './units';

export interface RunOptions {
  minSize?: number;
  frySize?: number;
  /** The swap directory, absolute. */
  dir?: string;
  command: string[];
}

const RUN_USAGE = 'bigmaac run [--min-size SIZE] [--fry-size SIZE] [--dir DIR] -- CMD ARGS...';
const VALUE_OPTIONS = ['--min-size', '--fry-size', '--dir'];
/** The library's default BIGMAAC_MIN_BIGMAAC_SIZE (docs/architecture.md §1). */
const DEFAULT_MIN_SIZE = 32 * 1024 * 1024;

function sizeOption(name: string, value: string): number {
  try {
    return parseSize(value);
  } catch (error) {
    throw new CliError(`run: ${(error as Error).message} (${name})`, ExitCode.usage);
  }
}

/** Splits `run`'s arguments: options first, then `--` (optional) and the command. */
export function parseRunArguments(
  args: string[],
  env: NodeJS.ProcessEnv = process.env
): RunOptions {
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
    if (!VALUE_OPTIONS.includes(name)) {
      throw usageError(`run: unknown option '${name}'`);
    }
    const value = inline ?? args[i + 1];
    // `--dir -- cmd` forgot the value: an option is never a value unless written `--dir=...`.
    if (value === undefined || value === '' || (inline === undefined && value.startsWith('--'))) {
      const example = name === '--dir' ? '--dir /scratch/bigmaac' : `${name} 64M`;
      throw usageError(`run: ${name} needs a value, e.g. ${example}`);
    }
    if (name === '--min-size') {
      options.minSize = sizeOption(name, value);
    } else if (name === '--fry-size') {
      options.frySize = sizeOption(name, value);
    } else {
      options.dir = validateSwapDir(value);
    }
    i += inline === undefined ? 2 : 1;
  }
  options.command = args.slice(i);
  if (options.command.length === 0) {
    throw usageError(`run: no command given; usage: ${RUN_USAGE}`);
  }
  checkFrySize(options, env);
  return options;
}

/** Fries are the mid-size tier: their threshold must lie below the big one. */
function checkFrySize(options: RunOptions, env: NodeJS.ProcessEnv): void {
  if (options.frySize === undefined) {
    return;
  }
  let minSize = options.minSize;
  if (minSize === undefined) {
    try {
      minSize = parseSize(env.BIGMAAC_MIN_BIGMAAC_SIZE ?? '');
    } catch {
      minSize = DEFAULT_MIN_SIZE;
    }
  }
  if (options.frySize >= minSize) {
    throw new CliError(
      `run: --fry-size (${options.frySize} bytes) must be below the big threshold ` +
        `--min-size (${minSize} bytes)`,
      ExitCode.usage
    );
  }
}

/**
 * The swap directory, absolute, after checking it can hold swap files: an existing
 * directory we may write to (or one the library can create), not on RAM.
 */
export function validateSwapDir(text: string): string {
  const dir = resolve(text);
  const problem = swapDirProblem(dir);
  if (problem) {
    throw new CliError(`run: --dir ${dir}: ${problem}`, ExitCode.usage);
  }
  return dir;
}

function swapDirProblem(dir: string): string | undefined {
  const existing = nearestExisting(dir);
  if (existing === dir && !statSync(dir).isDirectory()) {
    return 'not a directory';
  }
  if (existing !== dir && !statSync(existing).isDirectory()) {
    return `${existing} is not a directory`;
  }
  try {
    accessSync(existing, constants.W_OK | constants.X_OK);
  } catch {
    return existing === dir ? 'not writable' : `cannot be created: ${existing} is not writable`;
  }
  const ram = ramFilesystem(existing);
  if (ram) {
    return (
      `on ${ram}, which is RAM: disk-backed memory there saves nothing; ` +
      'choose a directory on a disk'
    );
  }
  return undefined;
}

/** `path` itself if it exists, else its closest existing ancestor. */
export function nearestExisting(path: string): string {
  let current = path;
  while (!existsSync(current) && dirname(current) !== current) {
    current = dirname(current);
  }
  return current;
}

/** statfs magic numbers of RAM-backed filesystems (linux/magic.h). */
const RAM_FILESYSTEMS: Record<number, string> = { 0x01021994: 'tmpfs', 0x858458f6: 'ramfs' };

/** "tmpfs" or "ramfs" when `path` lives on RAM, else undefined. */
export function ramFilesystem(path: string): string | undefined {
  return RAM_FILESYSTEMS[statfsSync(path).type];
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

/** The child's environment: the library appended to LD_PRELOAD, the settings given. */
export function childEnvironment(
  library: string,
  settings: Omit<RunOptions, 'command'>,
  env: NodeJS.ProcessEnv = process.env
): NodeJS.ProcessEnv {
  const preload = (env.LD_PRELOAD ?? '').split(/[:\s]+/).filter(Boolean);
  if (!preload.includes(library)) {
    preload.push(library);
  }
  const child: NodeJS.ProcessEnv = { ...env, LD_PRELOAD: preload.join(':') };
  if (settings.minSize !== undefined) {
    child.BIGMAAC_MIN_BIGMAAC_SIZE = String(settings.minSize);
  }
  if (settings.frySize !== undefined) {
    child.BIGMAAC_MIN_FRY_SIZE = String(settings.frySize);
  }
  if (settings.dir !== undefined) {
    // The directory wins over an inherited BIGMAAC_TEMPLATE's (the library prefers BIGMAAC_DIR).
    child.BIGMAAC_DIR = settings.dir;
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
    env: childEnvironment(library, options)
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
