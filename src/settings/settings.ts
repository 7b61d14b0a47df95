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
