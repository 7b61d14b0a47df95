"""Run by the C tests with and without LD_PRELOAD=libbigmaac.so; the outputs must match.

Prints results of numpy operations on arrays above the 32 MiB threshold, then
"owned=N": how many of the big arrays the library holds (0 without the preload), and
"reused=N": how many big requests were served by recycled regions.
"""
import ctypes
import hashlib
import multiprocessing

import numpy as np

MIB = 2**20
libc = ctypes.CDLL(None)
owns = getattr(libc, "bigmaac_owns", None)
if owns is not None:
    owns.argtypes = [ctypes.c_void_p]


class RecycleStats(ctypes.Structure):
    _fields_ = [(name, ctypes.c_uint64) for name in (
        "reused", "cached", "evicted", "punched", "cached_count", "cached_bytes", "ready_bytes")]


def reused():
    stats = RecycleStats()
    recycle_stats = getattr(libc, "bigmaac_recycle_stats", None)
    return stats.reused if recycle_stats is not None and recycle_stats(ctypes.byref(stats)) == 0 else 0


def owned(*arrays):
    return sum(1 for a in arrays if owns is not None and owns(a.ctypes.data))


def part_sum(i):
    return float(empty[i::4].sum())


ones = np.ones(64 * MIB // 8)
zeros = np.zeros(40 * MIB // 8)
empty = np.empty(48 * MIB // 8)
empty[:] = np.arange(empty.size) % 1000
both = np.concatenate([ones, zeros])
resized = np.resize(np.arange(1000, dtype=np.float64), 80 * MIB // 8)
total = ones + resized[: ones.size]

print("ones", ones.sum(), ones.dtype, ones.shape)
print("zeros", zeros.sum(), int(np.count_nonzero(zeros)))
print("empty", empty.sum(), empty[12345])
print("concatenate", both.sum(), both.size)
print("resize", resized.sum(), resized[-1])
print("add", total.sum())

data = bytearray()
for i in range(40):
    data += bytes([i]) * MIB
print("bytearray", len(data), sum(data[::4096]), hashlib.sha256(data).hexdigest())

# A freed dirty array's region comes back for the next request of its size: np.zeros
# (calloc) must still read zeros, np.empty then filled must hold what was written.
dirty = np.full(64 * MIB // 8, 7.0)
del dirty
fresh = np.zeros(64 * MIB // 8)
print("zeros after free", int(np.count_nonzero(fresh)))
del fresh
sums = []
for i in range(6):  # temporaries made and dropped each round
    t = ones * i + resized[: ones.size]
    sums.append(float(t.sum()))
    del t
print("temporaries", sums)
refilled = np.empty(64 * MIB // 8)
refilled[:] = 3.0
print("empty after free", refilled.sum())

# ndarray.resize reallocs its buffer in place (big -> bigger), zero-filling the tail.
grown = np.arange(40 * MIB // 8, dtype=np.float64)
grown.resize(90 * MIB // 8, refcheck=False)
print("ndarray.resize", grown.sum(), grown[40 * MIB // 8 - 1], grown[-1])

try:
    import pandas as pd
except ImportError:
    print("pandas not installed")
else:
    frame = pd.DataFrame({"a": ones[: 8 * MIB], "b": resized[: 8 * MIB]})
    frame["c"] = frame["a"] * 2 + frame["b"]
    print("pandas", frame.sum().tolist(), frame.groupby(frame["b"] % 7)["c"].sum().tolist())

# Forked workers read the parent's disk-backed array and return partial sums.
with multiprocessing.get_context("fork").Pool(2) as pool:
    parts = pool.map(part_sum, range(4))
print("fork pool", sum(parts), parts == [empty[i::4].sum() for i in range(4)])

print(f"owned={owned(ones, zeros, empty, both, resized, total)}")
print(f"reused={reused()}")
