/**
 * The notebook toggle's state: the notebook's metadata choice, the kernel's
 * actual state from /bigmaac/kernels and the user's default.
 */
import {
  metadataChoice,
  toggleLabel,
  toggleState,
  toggleTooltip,
  withEnabled
} from '../toggle/toggle';
import { trans } from './helpers/translation';

const ON = { enabled: true, reason: '' };
const OFF = { enabled: false, reason: 'disabled by the notebook' };

describe('metadataChoice', () => {
  it('reads metadata.bigmaac.enabled', () => {
    expect(metadataChoice({ enabled: true })).toBe(true);
    expect(metadataChoice({ enabled: false, min_bigmaac_size: '64M' })).toBe(
      false
    );
  });

  it('has no choice without a boolean', () => {
    for (const section of [undefined, null, 'on', [], {}, { enabled: 'yes' }]) {
      expect(metadataChoice(section)).toBeNull();
    }
  });
});

describe('withEnabled', () => {
  it('sets enabled and keeps the other keys', () => {
    expect(withEnabled({ min_bigmaac_size: '64M' }, false)).toEqual({
      min_bigmaac_size: '64M',
      enabled: false
    });
    expect(withEnabled(undefined, true)).toEqual({ enabled: true });
    expect(withEnabled('junk', true)).toEqual({ enabled: true });
  });
});

describe('toggleState', () => {
  it('shows the notebook’s choice first', () => {
    expect(toggleState(false, ON, true)).toEqual({
      on: false,
      source: 'notebook',
      kernel: ON,
      restartNeeded: true
    });
    expect(toggleState(true, ON, false).restartNeeded).toBe(false);
    expect(toggleState(true, null, false)).toMatchObject({
      on: true,
      restartNeeded: false
    });
  });

  it('then what the kernel runs with, then the user’s default', () => {
    expect(toggleState(null, OFF, true)).toMatchObject({
      on: false,
      source: 'kernel'
    });
    expect(toggleState(null, null, false)).toMatchObject({
      on: false,
      source: 'default'
    });
    expect(toggleState(null, null, true).on).toBe(true);
  });
});

describe('labels and tooltips', () => {
  it('labels the state', () => {
    expect(toggleLabel(toggleState(true, null, false), trans)).toBe(
      'BigMaac: on'
    );
    expect(toggleLabel(toggleState(null, OFF, true), trans)).toBe(
      'BigMaac: off'
    );
  });

  it('shows the kernel’s actual state and reason, and when to restart', () => {
    const tooltip = toggleTooltip(toggleState(true, OFF, false), true, trans);
    expect(tooltip).toContain('is on for this notebook');
    expect(tooltip).toContain(
      'The kernel runs with BigMaac off: disabled by the notebook'
    );
    expect(tooltip).toContain('Restart the kernel to apply the change.');
    const settled = toggleTooltip(toggleState(null, ON, false), true, trans);
    expect(settled).toContain('The kernel runs with BigMaac on.');
    expect(settled).not.toContain('Restart');
    expect(toggleTooltip(toggleState(null, null, true), false, trans)).toContain(
      'No kernel is running.'
    );
  });
});
