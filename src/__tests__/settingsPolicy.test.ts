/**
 * The user's settings: the schema refuses bad values with a reason, the
 * plugin's own rules catch what the schema cannot, and the settings map to
 * the agent policy of docs/protocol.md.
 */
import Ajv from 'ajv';
import * as fs from 'fs';
import * as path from 'path';

import {
  DEFAULT_SETTINGS,
  IBigmaacSettings,
  parseSize,
  policyFromSettings,
  readSettings,
  settingsNotices,
  validateSettings
} from '../settings/settings';

const SCHEMA_PATH = path.join(__dirname, '..', '..', 'schema', 'settings.json');
const schema = JSON.parse(fs.readFileSync(SCHEMA_PATH, 'utf8'));

/** Validate as JupyterLab's setting registry does (Ajv 8, strict off). */
function schemaErrors(value: Record<string, unknown>): string[] {
  const ajv = new Ajv({ strict: false, allErrors: true });
  const validate = ajv.compile(schema);
  return validate(value)
    ? []
    : (validate.errors ?? []).map(e => `${e.instancePath} ${e.message}`);
}

function settings(changes: Partial<IBigmaacSettings>): IBigmaacSettings {
  return { ...DEFAULT_SETTINGS, ...changes };
}

describe('schema/settings.json', () => {
  it('tells, under each pattern-checked field, what the editor’s “must match pattern” wants', () => {
    for (const [key, property] of Object.entries<any>(schema.properties)) {
      if (property.pattern) {
        expect([key, property.description]).toEqual([
          key,
          expect.stringMatching(/pattern/)
        ]);
      }
    }
    expect(schema.properties.minBigmaacSize.description).toMatch(
      /Format: a whole number of bytes, or a whole number followed by K, M, G or T/
    );
    expect(schema.properties.swapDir.description).toMatch(/starting with \//);
  });

  it('names every contract key with a title, a description and a default', () => {
    expect(Object.keys(schema.properties).sort()).toEqual(
      Object.keys(DEFAULT_SETTINGS).sort()
    );
    for (const [key, property] of Object.entries<any>(schema.properties)) {
      expect([key, typeof property.title]).toEqual([key, 'string']);
      expect([key, typeof property.description]).toEqual([key, 'string']);
      expect([key, property.default]).toEqual([
        key,
        (DEFAULT_SETTINGS as any)[key]
      ]);
    }
  });

  it('accepts the defaults and sizes with units', () => {
    expect(schemaErrors({ ...DEFAULT_SETTINGS })).toEqual([]);
    expect(
      schemaErrors({
        minBigmaacSize: ' 64 m ',
        minFrySize: '256K',
        swapDir: '/scratch/bigmaac',
        onDiskFull: 'ram',
        autoPageout: 'never',
        autoPageoutIdleSeconds: 86400,
        memoryPressurePercent: 0
      })
    ).toEqual([]);
  });

  it.each([
    ['minBigmaacSize', 'lots', /pattern/],
    ['minBigmaacSize', '1.5G', /pattern/],
    ['minBigmaacSize', '-1M', /pattern/],
    ['minFrySize', '64 MB', /pattern/],
    ['swapDir', 'relative/dir', /pattern/],
    ['onDiskFull', 'crash', /allowed values/],
    ['autoPageout', 'always', /allowed values/],
    ['autoPageoutIdleSeconds', 0, />= 1/],
    ['autoPageoutIdleSeconds', 86401, /<= 86400/],
    ['autoPageoutIdleSeconds', 1.5, /integer/],
    ['memoryPressurePercent', 100, /<= 99/],
    ['memoryPressurePercent', -1, />= 0/],
    ['enabled', 'yes', /boolean/],
    ['LD_PRELOAD', '/tmp/evil.so', /additional properties/]
  ])('refuses %s = %j with a reason', (key, value, reason) => {
    const errors = schemaErrors({ [key]: value });
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatch(reason);
  });
});

describe('parseSize', () => {
  it('reads bytes and K/M/G/T as powers of 1024', () => {
    expect(parseSize('0')).toBe(0);
    expect(parseSize('4096')).toBe(4096);
    expect(parseSize('4k')).toBe(4096);
    expect(parseSize(' 32 M ')).toBe(32 * 2 ** 20);
    expect(parseSize('2G')).toBe(2 * 2 ** 30);
    expect(parseSize('1T')).toBe(2 ** 40);
  });

  it('refuses what is not a size', () => {
    for (const text of ['', 'M', '1.5M', '1 MB', '-4K', '1e6']) {
      expect([text, parseSize(text)]).toEqual([text, null]);
    }
    expect(parseSize('99999999999T')).toBeNull();
  });
});

describe('validateSettings', () => {
  it('finds nothing wrong with the defaults', () => {
    expect(validateSettings(settings({}))).toEqual([]);
  });

  it('wants a disk-backed threshold of at least 4K', () => {
    expect(validateSettings(settings({ minBigmaacSize: '4K' }))).toEqual([]);
    expect(validateSettings(settings({ minBigmaacSize: '4095' }))).toEqual([
      {
        setting: 'minBigmaacSize',
        message: '"4095" is below the minimum of 4K'
      }
    ]);
  });

  it('wants a non-zero fries threshold below the disk-backed one', () => {
    expect(
      validateSettings(settings({ minFrySize: '256K', minBigmaacSize: '32M' }))
    ).toEqual([]);
    expect(
      validateSettings(settings({ minFrySize: '0', minBigmaacSize: '4K' }))
    ).toEqual([]);
    const problems = validateSettings(
      settings({ minFrySize: '32M', minBigmaacSize: '32M' })
    );
    expect(problems).toHaveLength(1);
    expect(problems[0].setting).toBe('minFrySize');
    expect(problems[0].message).toMatch(/must be below the disk-backed threshold "32M"/);
    expect(
      validateSettings(settings({ minFrySize: '1G', minBigmaacSize: '64M' }))
    ).toHaveLength(1);
  });

  it('names a size that does not parse (a hand-edited file)', () => {
    const problems = validateSettings(settings({ minBigmaacSize: 'lots' }));
    expect(problems.map(p => p.setting)).toEqual(['minBigmaacSize']);
  });
});

describe('readSettings', () => {
  it('falls back to the default for missing or mistyped values', () => {
    expect(readSettings({})).toEqual(DEFAULT_SETTINGS);
    expect(
      readSettings({
        enabled: 'no',
        autoPageout: 'sometimes',
        autoPageoutIdleSeconds: 0,
        memoryPressurePercent: 5
      })
    ).toEqual({ ...DEFAULT_SETTINGS, memoryPressurePercent: 5 });
  });
});

describe('policyFromSettings', () => {
  it('maps the defaults to idle page-out after 30 s and pressure at 85 %', () => {
    expect(policyFromSettings(settings({}))).toEqual({
      idlePageout: { enabled: true, idleSeconds: 30 },
      pressure: { enabled: true, thresholdPercent: 85 }
    });
  });

  it('turns idle page-out off with "never", keeping the seconds', () => {
    expect(
      policyFromSettings(
        settings({ autoPageout: 'never', autoPageoutIdleSeconds: 5 })
      ).idlePageout
    ).toEqual({ enabled: false, idleSeconds: 5 });
  });

  it('turns pressure off at 0 with a valid threshold kept', () => {
    expect(
      policyFromSettings(settings({ memoryPressurePercent: 0 })).pressure
    ).toEqual({ enabled: false, thresholdPercent: 85 });
    expect(
      policyFromSettings(settings({ memoryPressurePercent: 60 })).pressure
    ).toEqual({ enabled: true, thresholdPercent: 60 });
  });
});

describe('settingsNotices', () => {
  /** `GET /bigmaac/status` as the server answers with admin defaults. */
  const status = (
    settings: Record<string, unknown> = {},
    sources: Record<string, string> = {},
    problems: string[] = [],
    warnings: string[] = problems
  ) => ({
    settings: {
      enabled: true,
      min_bigmaac_size: '32M',
      min_fry_size: '0',
      swap_dir: '/scratch/bigmaac',
      on_disk_full: 'fail',
      ...settings
    },
    sources: {
      enabled: 'admin',
      min_bigmaac_size: 'admin',
      min_fry_size: 'admin',
      swap_dir: 'admin',
      on_disk_full: 'admin',
      ...sources
    },
    userSettings: { problems },
    warnings
  });

  it('says nothing when the settings apply as written', () => {
    expect(
      settingsNotices(
        { minBigmaacSize: '64M' },
        status({ min_bigmaac_size: '64M' }, { min_bigmaac_size: 'user' })
      )
    ).toEqual([]);
  });

  it('says an ignored value leaves BigMaac on, with the value in force', () => {
    const problem =
      'user setting minFrySize ignored: \'64M\' is not below minBigmaacSize \'32M\'';
    const notices = settingsNotices(
      { minBigmaacSize: '32M', minFrySize: '64M' },
      status({ min_bigmaac_size: '32M' }, { min_bigmaac_size: 'user' }, [
        problem
      ])
    );
    expect(notices).toEqual([
      'Small-allocation (fries) threshold: "64M" must be below the disk-backed threshold "32M" (or 0 to turn the fries tier off). It is ignored: new kernels use "0" (admin) instead, with BigMaac on.'
    ]);
    expect(notices.join(' ')).not.toMatch(/without BigMaac/);
  });

  it('says so without the server too, never that BigMaac goes off', () => {
    expect(settingsNotices({ minBigmaacSize: '1K' }, null)).toEqual([
      'Disk-backed threshold: "1K" is below the minimum of 4K. It is ignored: new kernels use the administrator’s value or the default instead, with BigMaac on.'
    ]);
  });

  it('passes on what else the server ignored, e.g. a hand-edited file', () => {
    const problem =
      "user setting swapDir ignored: 'scratch' is not an absolute path";
    expect(settingsNotices({ swapDir: 'scratch' }, status({}, {}, [problem])))
      .toEqual([
        'User setting swapDir ignored: \'scratch\' is not an absolute path: new kernels use "/scratch/bigmaac" (admin) instead, with BigMaac on.'
      ]);
  });

  it('names a locked setting and the value in force', () => {
    expect(
      settingsNotices(
        { swapDir: '/home/me/swap', enabled: false },
        status(
          { enabled: true },
          { swap_dir: 'admin (locked)', enabled: 'admin (locked)' }
        )
      )
    ).toEqual([
      'Enable BigMaac for new kernels is locked by your administrator: new kernels use on, not off.',
      'Swap directory is locked by your administrator: new kernels use "/scratch/bigmaac", not "/home/me/swap".'
    ]);
    // Asking for what the lock gives anyway needs no notice.
    expect(
      settingsNotices(
        { swapDir: '/scratch/bigmaac', minBigmaacSize: '32m' },
        status(
          {},
          { swap_dir: 'admin (locked)', min_bigmaac_size: 'admin (locked)' }
        )
      )
    ).toEqual([]);
  });

  it('passes on the server’s other warnings once', () => {
    const fries =
      'min_fry_size 64M (from user) is not below min_bigmaac_size 32M; the fries tier is off';
    expect(settingsNotices({}, status({}, {}, [], [fries]))).toEqual([
      `${fries}.`
    ]);
  });
});
