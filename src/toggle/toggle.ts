/**
 * A notebook's own BigMaac choice: `metadata.bigmaac.enabled` as the server's
 * provisioner reads it (docs/server.md, "Resolution order"), and what the
 * toggle shows for it.
 */

import type { TranslationBundle } from '@jupyterlab/translation';

import type { IKernelBigmaacState } from '../panel';

/** The notebook metadata key the provisioner reads. */
export const METADATA_KEY = 'bigmaac';

/** The notebook's choice in its metadata: `true`/`false`, or `null` when it has none. */
export function metadataChoice(section: unknown): boolean | null {
  if (!section || typeof section !== 'object' || Array.isArray(section)) {
    return null;
  }
  const enabled = (section as Record<string, unknown>).enabled;
  return typeof enabled === 'boolean' ? enabled : null;
}

/**
 * The metadata section with `enabled` set, keeping the other keys (for
 * example `min_bigmaac_size`) as they were.
 */
export function withEnabled(
  section: unknown,
  enabled: boolean
): Record<string, unknown> {
  const base =
    section && typeof section === 'object' && !Array.isArray(section)
      ? (section as Record<string, unknown>)
      : {};
  return { ...base, enabled };
}

/** Where the state the toggle shows comes from. */
export type ToggleSource = 'notebook' | 'kernel' | 'default';

/** What the toggle shows for one notebook. */
export interface IToggleState {
  /** Whether BigMaac is (to be) on for this notebook's kernel. */
  on: boolean;
  source: ToggleSource;
  /** The running kernel's state from `/bigmaac/kernels`, `null` if unknown or none. */
  kernel: IKernelBigmaacState | null;
  /** The running kernel differs from the notebook's choice until it restarts. */
  restartNeeded: boolean;
}

/**
 * The toggle's state: the notebook's choice, else what its kernel runs with,
 * else the user's default for new kernels.
 */
export function toggleState(
  choice: boolean | null,
  kernel: IKernelBigmaacState | null,
  userDefault: boolean
): IToggleState {
  if (choice !== null) {
    return {
      on: choice,
      source: 'notebook',
      kernel,
      restartNeeded: kernel !== null && kernel.enabled !== choice
    };
  }
  if (kernel !== null) {
    return { on: kernel.enabled, source: 'kernel', kernel, restartNeeded: false };
  }
  return { on: userDefault, source: 'default', kernel, restartNeeded: false };
}

/** The toggle's short label, e.g. "BigMaac: on". */
export function toggleLabel(
  state: IToggleState,
  trans: TranslationBundle
): string {
  return state.on ? trans.__('BigMaac: on') : trans.__('BigMaac: off');
}

/** The toggle's tooltip: the notebook's choice and what the kernel actually runs with. */
export function toggleTooltip(
  state: IToggleState,
  hasKernel: boolean,
  trans: TranslationBundle
): string {
  const lines: string[] = [];
  const choice = state.on
    ? trans.__('Disk-backed memory (BigMaac) is on for this notebook')
    : trans.__('Disk-backed memory (BigMaac) is off for this notebook');
  const origin = {
    notebook: trans.__('the notebook’s own choice'),
    kernel: trans.__('as its kernel runs'),
    default: trans.__('your default for new kernels')
  }[state.source];
  lines.push(`${choice} (${origin}).`);
  const kernel = state.kernel;
  if (!hasKernel) {
    lines.push(trans.__('No kernel is running.'));
  } else if (kernel === null) {
    lines.push(trans.__('The kernel’s BigMaac state is not known yet.'));
  } else if (kernel.enabled) {
    lines.push(trans.__('The kernel runs with BigMaac on.'));
  } else {
    lines.push(
      kernel.reason
        ? trans.__('The kernel runs with BigMaac off: %1', kernel.reason)
        : trans.__('The kernel runs with BigMaac off.')
    );
  }
  if (state.restartNeeded) {
    lines.push(trans.__('Restart the kernel to apply the change.'));
  }
  lines.push(trans.__('Click to switch.'));
  return lines.join('\n');
}
