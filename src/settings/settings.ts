/**
 * The user's BigMaac settings (schema/settings.json): sizes, the rules JSON
 * schema cannot express, and the agent policy they map to (docs/protocol.md).
 */

/** The settings plugin's id; its schema is schema/settings.json. */
export const SETTINGS_PLUGIN_ID = 'jupyterlab-bigmaac:settings';

/** The user's settings, as the schema names them. */
export interface IBigmaacSettings {
  enabled: boolean;
  minBigmaacSize: string;
  minFrySize: string;
  swapDir: string;
  onDiskFull: 'fail' | 'ram';
  autoPageout: 'never' | 'idle';
  autoPageoutIdleSeconds: number;
  memoryPressurePercent: number;
}

/** The schema's defaults, used for a value that is missing or of the wrong type. */
export const DEFAULT_SETTINGS: Readonly<IBigmaacSettings> = {
  enabled: true,
  minBigmaacSize: '32M',
  minFrySize: '0',
  swapDir: '',
  onDiskFull: 'fail',
  autoPageout: 'idle',
  autoPageoutIdleSeconds: 30,
  memoryPressurePercent: 85
};

/** The smallest disk-backed threshold: one page. */
export const MIN_BIGMAAC_SIZE = 4096;

/** The agent's automatic page-out policy (`policy/get`, `policy/set`). */
export interface IPolicy {
  idlePageout: { enabled: boolean; idleSeconds: number };
  pressure: { enabled: boolean; thresholdPercent: number };
}

const SIZE = /^\s*([0-9]+)\s*([KMGT]?)\s*$/i;
const SHIFTS: Record<string, number> = { '': 0, K: 10, M: 20, G: 30, T: 40 };

/**
 * The byte count of a size such as `64M` (powers of 1024), or `null` if the
 * text is not a size.
 */
export function parseSize(text: string): number | null {
  const match = SIZE.exec(text);
  if (!match) {
    return null;
  }
  const bytes = Number(match[1]) * 2 ** SHIFTS[match[2].toUpperCase()];
  return Number.isSafeInteger(bytes) ? bytes : null;
}

/** One rule the settings break: the setting's name and why. */
export interface ISettingProblem {
  setting: keyof IBigmaacSettings;
  message: string;
}

/**
 * The rules the schema cannot express: the disk-backed threshold is at least
 * 4K, and a non-zero fries threshold is below it. Empty when all is well.
 */
export function validateSettings(
  settings: IBigmaacSettings
): ISettingProblem[] {
  const problems: ISettingProblem[] = [];
  const big = parseSize(settings.minBigmaacSize);
  const fry = parseSize(settings.minFrySize);
  if (big === null) {
    problems.push({
      setting: 'minBigmaacSize',
      message: `"${settings.minBigmaacSize}" is not a size such as 32M`
    });
  } else if (big < MIN_BIGMAAC_SIZE) {
    problems.push({
      setting: 'minBigmaacSize',
      message: `"${settings.minBigmaacSize}" is below the minimum of 4K`
    });
  }
  if (fry === null) {
    problems.push({
      setting: 'minFrySize',
      message: `"${settings.minFrySize}" is not a size such as 256K`
    });
  } else if (fry > 0 && big !== null && fry >= big) {
    problems.push({
      setting: 'minFrySize',
      message: `"${settings.minFrySize}" must be below the disk-backed threshold "${settings.minBigmaacSize}" (or 0 to turn the fries tier off)`
    });
  }
  return problems;
}

/**
 * The settings from a composite settings object; a value that is missing or
 * of the wrong type (a hand-edited file) falls back to the default.
 */
export function readSettings(
  composite: Partial<Record<string, unknown>>
): IBigmaacSettings {
  const pick = <K extends keyof IBigmaacSettings>(
    key: K,
    valid: (value: unknown) => boolean
  ): IBigmaacSettings[K] =>
    valid(composite[key])
      ? (composite[key] as IBigmaacSettings[K])
      : DEFAULT_SETTINGS[key];
  const isString = (v: unknown) => typeof v === 'string';
  const isInteger = (min: number, max: number) => (v: unknown) =>
    Number.isInteger(v) && (v as number) >= min && (v as number) <= max;
  return {
    enabled: pick('enabled', v => typeof v === 'boolean'),
    minBigmaacSize: pick('minBigmaacSize', isString),
    minFrySize: pick('minFrySize', isString),
    swapDir: pick('swapDir', isString),
    onDiskFull: pick('onDiskFull', v => v === 'fail' || v === 'ram'),
    autoPageout: pick('autoPageout', v => v === 'never' || v === 'idle'),
    autoPageoutIdleSeconds: pick('autoPageoutIdleSeconds', isInteger(1, 86400)),
    memoryPressurePercent: pick('memoryPressurePercent', isInteger(0, 99))
  };
}

/** The agent policy the settings ask for (mapping fixed in docs/protocol.md). */
export function policyFromSettings(settings: IBigmaacSettings): IPolicy {
  return {
    idlePageout: {
      enabled: settings.autoPageout === 'idle',
      idleSeconds: settings.autoPageoutIdleSeconds
    },
    pressure: {
      enabled: settings.memoryPressurePercent > 0,
      // 0 means off; the threshold itself stays a valid percentage.
      thresholdPercent:
        settings.memoryPressurePercent > 0
          ? settings.memoryPressurePercent
          : DEFAULT_SETTINGS.memoryPressurePercent
    }
  };
}

/** The settings' titles, as the Settings Editor shows them (schema). */
export const SETTING_TITLES: Readonly<Record<keyof IBigmaacSettings, string>> =
  {
    enabled: 'Enable BigMaac for new kernels',
    minBigmaacSize: 'Disk-backed threshold',
    minFrySize: 'Small-allocation (fries) threshold',
    swapDir: 'Swap directory',
    onDiskFull: 'When the disk is full',
    autoPageout: 'Automatic page-out',
    autoPageoutIdleSeconds: 'Idle seconds before page-out',
    memoryPressurePercent: 'Memory pressure threshold (%)'
  };

/** The server's names of the settings a kernel starts with (docs/server.md). */
const KERNEL_SETTING_NAMES: Partial<Record<keyof IBigmaacSettings, string>> = {
  enabled: 'enabled',
  minBigmaacSize: 'min_bigmaac_size',
  minFrySize: 'min_fry_size',
  swapDir: 'swap_dir',
  onDiskFull: 'on_disk_full'
};

/** The source the server names for a value an administrator locked. */
const LOCKED_SOURCE = 'admin (locked)';

/** What `GET /bigmaac/status` says of the settings new kernels get. */
export interface ISettingsStatus {
  settings?: Record<string, unknown>;
  sources?: Record<string, string>;
  warnings?: string[];
  userSettings?: { problems?: string[] };
}

/**
 * What the user should know after editing the settings, one sentence each:
 * values the server ignores (and what new kernels use instead), values an
 * administrator locked, and the server's other warnings. Empty when the
 * settings apply as written.
 *
 * `user` is what the user set (the settings file, without defaults);
 * `status` is `null` when the server could not be asked.
 */
export function settingsNotices(
  user: Partial<Record<string, unknown>>,
  status: ISettingsStatus | null
): string[] {
  const notices: string[] = [];
  const inForce = (key: keyof IBigmaacSettings): string => {
    const name = KERNEL_SETTING_NAMES[key];
    const value = name ? status?.settings?.[name] : undefined;
    if (value === undefined) {
      return 'new kernels use the administrator’s value or the default instead, with BigMaac on';
    }
    const source = status?.sources?.[name!];
    const from = source ? ` (${source})` : '';
    return `new kernels use ${showValue(value)}${from} instead, with BigMaac on`;
  };

  // The rules the schema cannot check, known here without asking the server.
  const checked = new Set<string>();
  for (const problem of validateSettings(readSettings(user))) {
    if (user[problem.setting] === undefined) {
      continue;
    }
    checked.add(problem.setting);
    notices.push(
      `${SETTING_TITLES[problem.setting]}: ${problem.message}. It is ignored: ${inForce(problem.setting)}.`
    );
  }
  // What else the server ignored, e.g. a hand-edited file.
  const problems = status?.userSettings?.problems ?? [];
  for (const problem of problems) {
    const key = /^user setting (\w+) ignored/.exec(problem)?.[1] as
      | keyof IBigmaacSettings
      | undefined;
    if (key && checked.has(key)) {
      continue;
    }
    notices.push(
      key && key in SETTING_TITLES
        ? `${capitalize(problem)}: ${inForce(key)}.`
        : `${capitalize(problem)}.`
    );
  }
  // Values the user set that an administrator's lock overrides.
  const kernelKeys = Object.keys(
    KERNEL_SETTING_NAMES
  ) as (keyof IBigmaacSettings)[];
  for (const key of kernelKeys) {
    const name = KERNEL_SETTING_NAMES[key]!;
    const mine = user[key];
    if (
      mine === undefined ||
      (key === 'swapDir' && mine === '') ||
      status?.sources?.[name] !== LOCKED_SOURCE
    ) {
      continue;
    }
    const value = status.settings?.[name];
    if (value !== undefined && sameValue(mine, value)) {
      continue;
    }
    notices.push(
      `${SETTING_TITLES[key]} is locked by your administrator: new kernels use ${showValue(value)}, not ${showValue(mine)}.`
    );
  }
  // The server's other warnings, such as the fries tier turned off.
  for (const warning of status?.warnings ?? []) {
    if (!problems.includes(warning)) {
      // It may start with a setting's name: left as the server wrote it.
      notices.push(`${warning.replace(/[.\s]+$/, '')}.`);
    }
  }
  return notices;
}

function showValue(value: unknown): string {
  if (typeof value === 'boolean') {
    return value ? 'on' : 'off';
  }
  return typeof value === 'string' ? `"${value}"` : String(value);
}

/** Sizes compare by bytes (`32m` is `32M`), other values as they are. */
function sameValue(mine: unknown, inForce: unknown): boolean {
  if (typeof mine === 'string' && typeof inForce === 'string') {
    const a = parseSize(mine);
    const b = parseSize(inForce);
    if (a !== null && b !== null) {
      return a === b;
    }
  }
  return mine === inForce;
}

function capitalize(text: string): string {
  const trimmed = text.replace(/[.\s]+$/, '');
  return trimmed.charAt(0).toUpperCase() + trimmed.slice(1);
}
