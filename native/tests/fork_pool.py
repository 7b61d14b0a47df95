"""Run by the C tests under LD_PRELOAD=libbigmaac.so: multiprocessing with the fork start
method on disk-backed numpy arrays (docs/fork.md).

The parent builds arrays, starts a pool of 8 workers, and keeps overwriting the arrays
while the workers sum slices of them: every worker must see the arrays as they were when
it was forked, and the parent its own writes. Prints "ok" and the fork counters, or
raises.
"""
import ctypes
import multiprocessing
import threading

import numpy as np

MIB = 2**20
WORKERS = 8
SLICES = 32

libc = ctypes.CDLL(None)
libc.bigmaac_owns.argtypes = [ctypes.c_void_p]


class ForkStats(ctypes.Structure):
    _fields_ = [(name, ctypes.c_uint64) for name in (
        "frozen_forks", "copied_chunks", "ram_chunks", "thawed_chunks", "unisolated_chunks",
        "frozen_chunks", "backing_files", "snapshot_chunks")]


class PageoutResult(ctypes.Structure):
    _fields_ = [(name, ctypes.c_uint64) for name in (
        "bytes_total", "bytes_written", "duration_ns", "resident_before", "resident_after")]


def fork_stats():
    stats = ForkStats()
    assert libc.bigmaac_fork_stats(ctypes.byref(stats)) == 0
    return stats


arrays = [np.arange(8 * MIB, dtype=np.float64) * (k + 1) for k in range(4)]  # 64 MiB each
assert all(libc.bigmaac_owns(a.ctypes.data) for a in arrays), "arrays are not disk-backed"
expected = {(k, s): float(part.sum())
            for k, a in enumerate(arrays) for s, part in enumerate(np.array_split(a, SLICES))}


def slice_sum(task):
    k, s = task
    return task, float(np.array_split(arrays[k], SLICES)[s].sum())


def overwrite(stop):
    value = 0.0
    while not stop.is_set():
        value += 1.0
        for a in arrays:
            a[::4096] = -value
            a[1::7] = value
    return value


if __name__ == "__main__":
    with multiprocessing.get_context("fork").Pool(WORKERS) as pool:
        stop = threading.Event()
        writer = threading.Thread(target=overwrite, args=(stop,))
        writer.start()
        tasks = [(k, s) for k in range(len(arrays)) for s in range(SLICES)] * 3
        results = pool.map(slice_sum, tasks, chunksize=1)
        stop.set()
        writer.join()
    wrong = [task for task, total in results if total != expected[task]]
    assert not wrong, f"workers saw the parent's writes in {len(wrong)} slices: {wrong[:4]}"

    for a in arrays:  # the parent sees its own writes, everywhere
        a[:] = 3.0
        assert float(a.sum()) == 3.0 * a.size
    stats = fork_stats()
    assert stats.frozen_forks >= WORKERS, stats.frozen_forks
    assert stats.copied_chunks > 0 and stats.ram_chunks == 0, (stats.copied_chunks, stats.ram_chunks)
    assert all(libc.bigmaac_owns(a.ctypes.data) for a in arrays)
    result = PageoutResult()
    assert libc.bigmaac_pageout(ctypes.byref(result)) == 0
    assert all(float(a.sum()) == 3.0 * a.size for a in arrays), "data lost in page-out"
    print("ok", "forks", stats.frozen_forks, "copied", stats.copied_chunks)
