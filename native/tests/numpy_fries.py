"""Run by the C tests plain and under LD_PRELOAD=libbigmaac.so with
BIGMAAC_MIN_FRY_SIZE=4K: numpy work on many mid-size arrays (fries), plus Python's own
lists, dicts and bytes above 4 KiB. The outputs must match except "fries=N": how many
of the arrays live in the fries arena (0 without the preload)."""
import ctypes
import hashlib

import numpy as np

libc = ctypes.CDLL(None)
owns = getattr(libc, "bigmaac_owns", None)
if owns is not None:
    owns.argtypes = [ctypes.c_void_p]


def digest(array):
    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()[:16]


def main():
    rng = np.random.default_rng(7)
    arrays = [rng.standard_normal(n) for n in range(600, 120_000, 997)]  # 4.7 KiB .. 940 KiB
    print("sum", f"{sum(float(a.sum()) for a in arrays):.6f}")
    grown = np.zeros(0)
    for a in arrays[:40]:
        grown = np.concatenate([grown, a[:500]])
    print("concatenate", digest(grown))
    print("resize", digest(np.resize(arrays[3], 50_000)))
    print("zeros", float(np.zeros(70_000).sum()), "ones", float(np.ones(90_000).sum()))
    products = [a[:100] @ b[:100] for a, b in zip(arrays, arrays[1:])]
    print("products", f"{sum(products):.6f}")
    buffer = bytearray()
    for i in range(3000):
        buffer += bytes([i % 251]) * 97
    print("bytearray", hashlib.sha256(buffer).hexdigest()[:16])
    table = {i: list(range(i % 2000)) for i in range(3000)}
    print("dict", sum(len(v) for v in table.values()))
    held = sum(1 for a in arrays if owns is not None and owns(a.ctypes.data))
    print(f"fries={held} of {len(arrays)}")


if __name__ == "__main__":
    main()
