"""Run by the C tests with and without LD_PRELOAD=libbigmaac.so; the outputs must match.

Prints results of numpy operations on arrays above the 32 MiB threshold, then
"owned=N": how many of the big arrays the library holds (0 without the preload).
"""
import ctypes
import multiprocessing

import numpy as np

MIB = 2**20
libc = ctypes.CDLL(None)
owns = getattr(libc, "bigmaac_owns", None)
if owns is not None:
    owns.argtypes = [ctypes.c_void_p]


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
print("bytearray", len(data), sum(data[::4096]))

# Forked workers read the parent's disk-backed array and return partial sums.
with multiprocessing.get_context("fork").Pool(2) as pool:
    parts = pool.map(part_sum, range(4))
print("fork pool", sum(parts), parts == [empty[i::4].sum() for i in range(4)])

print(f"owned={owned(ones, zeros, empty, both, resized, total)}")
