/**
 * The variable probe the panel sends to Python kernels, run by a real Python
 * with numpy, and the matching of its buffers to allocation address ranges.
 */
import { spawnSync } from 'child_process';

import {
  MIN_VARIABLE_BYTES,
  isPythonLanguage,
  parseVariablesReply,
  variablesExpression,
  variablesIn
} from '../panel/variables';
import { PYTHON, requireArtifacts } from './helpers';

/**
 * Evaluate the probe's expression the way IPython evaluates user_expressions
 * (eval in the user's globals) after `setup` ran there, and report the answer
 * with the user's global names before and after and the true data addresses.
 */
function probe(setup: string): any {
  const script = `
import json, sys
ns = {"__name__": "__main__", "__builtins__": __builtins__}
exec(${JSON.stringify(setup)}, ns)
before = sorted(ns)
answer = eval(sys.stdin.read(), ns)
after = sorted(ns)
addresses = {k: v.__array_interface__["data"][0] for k, v in ns.items()
             if hasattr(v, "__array_interface__")}
addresses.update({k: v.buffer_info()[0] for k, v in ns.items() if type(v).__name__ == "array"})
print(json.dumps({"json": answer._repr_json_(), "text": repr(answer),
                  "before": before, "after": after, "addresses": addresses}))
`;
  const result = spawnSync(PYTHON, ['-c', script], {
    input: variablesExpression(),
    encoding: 'utf8',
    timeout: 60_000
  });
  if (result.status !== 0) {
    throw new Error(`python failed: ${result.stderr}`);
  }
  return JSON.parse(result.stdout);
}

describe('the variable probe', () => {
  beforeAll(() => requireArtifacts([PYTHON]));

  it('finds large ndarrays, views, bytes, bytearray and array.array without leaving names', () => {
    const out = probe(`
import numpy as np, array
a = np.ones((1000, 1000))
view = a[10:]
b = bytearray(10**6)
c = bytes(10**6)
d = array.array("d", [0.0]) * 100000
tiny = np.ones(4)
_hidden = np.ones(10**6)
def f(): pass
`);
    expect(out.after).toEqual(out.before);
    const variables = parseVariablesReply({
      status: 'ok',
      data: { 'application/json': out.json }
    });
    const byName = Object.fromEntries(variables.map(v => [v.name, v]));
    expect(Object.keys(byName).sort()).toEqual(['a', 'b', 'c', 'd', 'view']);
    expect(byName.a).toEqual({
      name: 'a',
      type: 'numpy.ndarray',
      shape: '(1000, 1000)',
      address: out.addresses.a,
      nbytes: 8_000_000
    });
    expect(byName.view.shape).toBe('(990, 1000)');
    expect(byName.view.address).toBe(out.addresses.view);
    expect(byName.b).toMatchObject({ type: 'bytearray', shape: 'len 1000000' });
    expect(byName.c).toMatchObject({ type: 'bytes', nbytes: 1_000_000 });
    expect(byName.d).toMatchObject({
      type: 'array.array',
      shape: 'len 100000',
      address: out.addresses.d,
      nbytes: 800_000
    });
    // The plain-text form carries the same list, for kernels without JSON output.
    expect(
      parseVariablesReply({ status: 'ok', data: { 'text/plain': out.text } })
    ).toEqual(variables);
  });

  it('works without numpy imported, and does not import it', () => {
    const out = probe(`
import sys
b = bytearray(${MIN_VARIABLE_BYTES * 4})
c = bytes(${MIN_VARIABLE_BYTES * 4})
numpy_loaded = "numpy" in sys.modules
`);
    const variables = parseVariablesReply({
      status: 'ok',
      data: { 'application/json': out.json }
    });
    expect(variables.map(v => v.name).sort()).toEqual(['b', 'c']);
    expect(variables.every(v => v.address > 0)).toBe(true);
  });

  it('reports the kernel error of a failed expression', () => {
    expect(() =>
      parseVariablesReply({
        status: 'error',
        ename: 'NameError',
        evalue: "name 'x' is not defined"
      })
    ).toThrow("NameError: name 'x' is not defined");
    expect(() => parseVariablesReply({ status: 'ok', data: {} })).toThrow(
      'the kernel answered something else than a variable list'
    );
  });
});

describe('variablesIn', () => {
  const variables = [
    { name: 'a', type: 't', shape: '', address: 1000, nbytes: 100 },
    { name: 'b', type: 't', shape: '', address: 1999, nbytes: 1 },
    { name: 'c', type: 't', shape: '', address: 2000, nbytes: 1 }
  ];
  it('keeps buffers starting inside the range, end excluded', () => {
    expect(
      variablesIn({ address: 1000, size: 1000 }, variables).map(v => v.name)
    ).toEqual(['a', 'b']);
  });
});

describe('isPythonLanguage', () => {
  it('accepts Python kernels only', () => {
    expect(isPythonLanguage('python')).toBe(true);
    expect(isPythonLanguage('Python3')).toBe(true);
    expect(isPythonLanguage('R')).toBe(false);
    expect(isPythonLanguage('')).toBe(false);
  });
});
