/**
 * Which Python variables own a kernel's disk-backed allocations.
 *
 * The kernel is asked through `user_expressions` of a silent execute request
 * (no history, no execution count, no output). The expression runs the probe
 * in a namespace of its own and only reads the user's globals, so it leaves
 * no names behind. The probe reports each large buffer's start address; the
 * panel matches those to allocation address ranges.
 */

/** The `user_expressions` key the probe's answer comes back under. */
export const VARIABLES_EXPRESSION_KEY = 'bigmaac_variables';

/** Buffers smaller than this are not reported (they cannot be disk-backed). */
export const MIN_VARIABLE_BYTES = 4096;

/** One buffer owned by a global variable of the kernel. */
export interface IVariableBuffer {
  /** The global's name; `df['col']`-like suffixes name a DataFrame's blocks. */
  name: string;
  /** The type's qualified name, e.g. `numpy.ndarray`. */
  type: string;
  /** A shape such as `(1000, 8)`, or a length such as `len 4096`; may be empty. */
  shape: string;
  /** Start address of the buffer in the kernel process. */
  address: number;
  /** Bytes of the buffer. */
  nbytes: number;
}

/**
 * The probe: Python source run with `exec` in a fresh namespace holding only
 * `user_ns` (the user's globals). It must not import anything the user has
 * not imported already (numpy and pandas are used only if present) and must
 * not touch the buffers' pages.
 */
const PROBE = `
import sys

def _type_name(obj):
    t = type(obj)
    return t.__module__ + "." + t.__qualname__ if t.__module__ != "builtins" else t.__qualname__

def _ndarray(name, obj, out, label=None):
    info = obj.__array_interface__
    out.append({"name": name, "type": label or _type_name(obj),
                "shape": str(tuple(int(n) for n in obj.shape)),
                "address": int(info["data"][0]), "nbytes": int(obj.nbytes)})

def _buffer_address(obj):
    np = sys.modules.get("numpy")
    if np is not None:
        return int(np.frombuffer(obj, dtype=np.uint8).__array_interface__["data"][0])
    import ctypes
    if isinstance(obj, bytes):
        return id(obj) + bytes.__basicsize__ - 1
    return ctypes.addressof((ctypes.c_char * len(obj)).from_buffer(obj))

def _probe(user_ns, min_bytes):
    np = sys.modules.get("numpy")
    pd = sys.modules.get("pandas")
    arr = sys.modules.get("array")
    out = []
    for name, obj in list(user_ns.items()):
        if name.startswith("_"):
            continue
        try:
            if np is not None and isinstance(obj, np.ndarray):
                if obj.nbytes >= min_bytes:
                    _ndarray(name, obj, out)
            elif pd is not None and isinstance(obj, pd.DataFrame):
                for block in obj._mgr.blocks:
                    values = getattr(block, "values", None)
                    if np is not None and isinstance(values, np.ndarray) and values.nbytes >= min_bytes:
                        out.append({"name": name, "type": _type_name(obj),
                                    "shape": str(tuple(int(n) for n in obj.shape)),
                                    "address": int(values.__array_interface__["data"][0]),
                                    "nbytes": int(values.nbytes)})
            elif pd is not None and isinstance(obj, pd.Series):
                values = obj.to_numpy(copy=False)
                if np is not None and isinstance(values, np.ndarray) and values.nbytes >= min_bytes:
                    _ndarray(name, values, out, _type_name(obj))
            elif isinstance(obj, (bytes, bytearray)) or (arr is not None and isinstance(obj, arr.array)):
                nbytes = len(obj) * getattr(obj, "itemsize", 1)
                if nbytes >= min_bytes:
                    out.append({"name": name, "type": _type_name(obj), "shape": "len %d" % len(obj),
                                "address": _buffer_address(obj), "nbytes": int(nbytes)})
        except Exception:
            continue
    return out

class _Answer:
    def __init__(self, value):
        import json
        self.text = json.dumps(value)
        self.value = value
    def _repr_json_(self):
        return {"variables": self.value}
    def __repr__(self):
        return self.text

answer = _Answer(_probe(user_ns, min_bytes))
`;

/**
 * The expression for `user_expressions`: runs the probe in a throw-away
 * namespace and evaluates to its answer.
 */
export function variablesExpression(minBytes = MIN_VARIABLE_BYTES): string {
  return (
    '(lambda __bigmaac_ns: (exec(' +
    JSON.stringify(PROBE) +
    ', __bigmaac_ns), __bigmaac_ns["answer"])[1])' +
    `({"user_ns": globals(), "min_bytes": ${Math.max(0, Math.floor(minBytes))}})`
  );
}

/**
 * Read the probe's answer from an `execute_reply`'s `user_expressions` entry.
 *
 * Throws an `Error` with the kernel's message when the expression failed, and
 * when the answer is not shaped as the probe makes it.
 */
export function parseVariablesReply(entry: any): IVariableBuffer[] {
  if (!entry || typeof entry !== 'object') {
    throw new Error('the kernel did not evaluate the expression');
  }
  if (entry.status === 'error') {
    throw new Error(`${entry.ename ?? 'Error'}: ${entry.evalue ?? ''}`.trim());
  }
  const data = entry.data ?? {};
  let value: any = data['application/json'];
  if (value === undefined && typeof data['text/plain'] === 'string') {
    value = { variables: JSON.parse(data['text/plain']) };
  }
  if (!value || !Array.isArray(value.variables)) {
    throw new Error('the kernel answered something else than a variable list');
  }
  return value.variables.filter(isVariableBuffer);
}

function isVariableBuffer(value: any): value is IVariableBuffer {
  return (
    !!value &&
    typeof value.name === 'string' &&
    typeof value.type === 'string' &&
    typeof value.shape === 'string' &&
    Number.isFinite(value.address) &&
    Number.isFinite(value.nbytes)
  );
}

/** An address range in a process, e.g. one disk-backed allocation. */
export interface IAddressRange {
  address: number;
  size: number;
}

/**
 * The variables whose buffer starts inside `range`.
 *
 * A buffer belongs to the allocation that holds its first byte: a view or a
 * slice of an array starts inside its base's allocation too, and is listed
 * with it.
 */
export function variablesIn(
  range: IAddressRange,
  variables: readonly IVariableBuffer[]
): IVariableBuffer[] {
  return variables.filter(
    v => v.address >= range.address && v.address < range.address + range.size
  );
}

/** Whether a kernel language is one the probe can run in. */
export function isPythonLanguage(language: string): boolean {
  return /^python/i.test(language.trim());
}
