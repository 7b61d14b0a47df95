/**
 * The agent's policy values: defaults (those of the user settings, schema/settings.json)
 * and the validation of `policy/set`.
 */
import { Policy, PolicySetParams } from '../common/protocol';

export const DEFAULT_POLICY: Policy = {
  idlePageout: { enabled: true, idleSeconds: 30 },
  pressure: { enabled: true, thresholdPercent: 85 }
};

export const IDLE_SECONDS_RANGE = [1, 86400] as const;
export const THRESHOLD_PERCENT_RANGE = [1, 99] as const;

export function copyPolicy(policy: Policy): Policy {
  return { idlePageout: { ...policy.idlePageout }, pressure: { ...policy.pressure } };
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function checkKeys(value: Record<string, unknown>, where: string, known: string[]): void {
  const unknown = Object.keys(value).find(key => !known.includes(key));
  if (unknown !== undefined) {
    throw new RangeError(`${where}${unknown}: unknown field (known: ${known.join(', ')})`);
  }
}

function checkBoolean(value: unknown, field: string): boolean {
  if (typeof value !== 'boolean') {
    throw new RangeError(`${field}: must be true or false, got ${JSON.stringify(value)}`);
  }
  return value;
}

function checkInteger(value: unknown, field: string, [low, high]: readonly number[]): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < low || value > high) {
    throw new RangeError(
      `${field}: must be an integer from ${low} to ${high}, got ${JSON.stringify(value)}`
    );
  }
  return value;
}

/**
 * `current` with `params` applied; a RangeError whose message names the field and the
 * reason when anything is wrong (then nothing is applied).
 */
export function applyPolicy(current: Policy, params: PolicySetParams | unknown): Policy {
  if (!isObject(params)) {
    throw new RangeError('params: must be an object with idlePageout and/or pressure');
  }
  checkKeys(params, '', ['idlePageout', 'pressure']);
  const next = copyPolicy(current);
  const { idlePageout, pressure } = params;
  if (idlePageout !== undefined) {
    if (!isObject(idlePageout)) {
      throw new RangeError('idlePageout: must be an object with enabled and/or idleSeconds');
    }
    checkKeys(idlePageout, 'idlePageout.', ['enabled', 'idleSeconds']);
    if (idlePageout.enabled !== undefined) {
      next.idlePageout.enabled = checkBoolean(idlePageout.enabled, 'idlePageout.enabled');
    }
    if (idlePageout.idleSeconds !== undefined) {
      next.idlePageout.idleSeconds = checkInteger(
        idlePageout.idleSeconds,
        'idlePageout.idleSeconds',
        IDLE_SECONDS_RANGE
      );
    }
  }
  if (pressure !== undefined) {
    if (!isObject(pressure)) {
      throw new RangeError('pressure: must be an object with enabled and/or thresholdPercent');
    }
    checkKeys(pressure, 'pressure.', ['enabled', 'thresholdPercent']);
    if (pressure.enabled !== undefined) {
      next.pressure.enabled = checkBoolean(pressure.enabled, 'pressure.enabled');
    }
    if (pressure.thresholdPercent !== undefined) {
      next.pressure.thresholdPercent = checkInteger(
        pressure.thresholdPercent,
        'pressure.thresholdPercent',
        THRESHOLD_PERCENT_RANGE
      );
    }
  }
  return next;
}
