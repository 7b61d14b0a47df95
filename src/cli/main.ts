/**
 * `bigmaac`: the command-line tool and the agent, one entry point for every command.
 * Exit codes are documented in docs/cli.md.
 */
import { parseArgs } from 'util';

import { runAgent } from '../agent/server';
import { VERSION } from '../agent/version';
import { CliError, fromAddonError, usageError } from './errors';
import { doctor } from './doctor';
import { pageout, pageoutAll, parsePid } from './pageout';
import { ps } from './ps';
import { run } from './run';
import { show } from './show';
import { top } from './top';

const USAGE = `Usage: bigmaac COMMAND [OPTIONS]

Disk-backed memory for big allocations: requests above a threshold go to unlinked
files on disk, so the kernel can page them out instead of OOM-killing the process.

Commands:
  run [--min-size SIZE] -- CMD ARGS...  run CMD with BigMaac preloaded
                                        (SIZE: bytes or K, M, G, T; default 32M)
      [--fry-size SIZE] [--dir DIR]     fries tier threshold; swap directory
  ps [--json]                           list processes running under BigMaac
  show PID [--json]                     one process: counters and allocations
  pageout PID|--all [--json]            write a process's (or every process's)
                                        disk-backed memory to disk, drop it from RAM
  doctor [--dir DIR] [--json]           check the swap directory, disk, memory
                                        limit, kernel and LD_PRELOAD
  top [--interval SEC] [--once]         live view of disk-backed memory per process
  agent [--parent-pid PID]              serve the JSON-RPC protocol on stdio

Options:
  -h, --help     show this help
  -V, --version  show the version

Environment: BIGMAAC_LIBRARY (libbigmaac.so for run), BIGMAAC_ADDON (bigmaac.node).
Documentation: docs/cli.md, docs/protocol.md.
`;

/** parseArgs for one command, turning its complaints into usage errors. */
function options<T extends Record<string, { type: 'string' | 'boolean' }>>(
  command: string,
  args: string[],
  spec: T,
  maxPositionals: number
) {
  try {
    const parsed = parseArgs({ args, options: spec, allowPositionals: true, strict: true });
    if (parsed.positionals.length > maxPositionals) {
      throw usageError(`${command}: unexpected argument '${parsed.positionals[maxPositionals]}'`);
    }
    return parsed;
  } catch (error) {
    if (error instanceof CliError) {
      throw error;
    }
    throw usageError(`${command}: ${(error as Error).message.split('\n')[0]}`);
  }
}

async function main(argv: string[]): Promise<void> {
  const [command, ...args] = argv;
  switch (command) {
    case undefined:
    case '-h':
    case '--help':
    case 'help':
      process.stdout.write(USAGE);
      return;
    case '-V':
    case '--version':
      process.stdout.write(`bigmaac ${VERSION}\n`);
      return;
    case 'run':
      await run(args);
      return;
    case 'ps': {
      const { values } = options('ps', args, { json: { type: 'boolean' } }, 0);
      ps(values.json === true);
      return;
    }
    case 'show': {
      const { values, positionals } = options('show', args, { json: { type: 'boolean' } }, 1);
      await show(positionals[0], values.json === true);
      return;
    }
    case 'pageout': {
      const { values, positionals } = options(
        'pageout',
        args,
        { json: { type: 'boolean' }, all: { type: 'boolean' } },
        1
      );
      if (values.all && positionals.length > 0) {
        throw usageError('pageout: give a PID or --all, not both');
      }
      if (values.all) {
        await pageoutAll(values.json === true);
      } else {
        await pageout(positionals[0], values.json === true);
      }
      return;
    }
    case 'top': {
      const { values } = options(
        'top',
        args,
        { interval: { type: 'string' }, once: { type: 'boolean' } },
        0
      );
      await top(values.interval, values.once === true);
      return;
    }
    case 'doctor': {
      const { values } = options(
        'doctor',
        args,
        { dir: { type: 'string' }, json: { type: 'boolean' } },
        0
      );
      doctor(values.dir, values.json === true);
      return;
    }
    case 'agent': {
      // --stdio is accepted because LSP clients pass it by habit.
      const { values } = options(
        'agent',
        args,
        { 'parent-pid': { type: 'string' }, stdio: { type: 'boolean' } },
        0
      );
      const parentPid = values['parent-pid'];
      runAgent(parentPid === undefined ? undefined : parsePid(parentPid, 'agent --parent-pid'));
      return;
    }
    default:
      throw usageError(`unknown command '${command}'`);
  }
}

main(process.argv.slice(2)).catch((error: unknown) => {
  const failure = fromAddonError(error);
  process.stderr.write(`bigmaac: ${failure.message}\n`);
  process.exitCode = failure.exitCode;
});


