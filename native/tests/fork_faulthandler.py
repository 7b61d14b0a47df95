"""Run by the C tests under LD_PRELOAD=libbigmaac.so: faulthandler enabled after a fork
(pytest, or a worker's own set-up, does that) while a child holds a snapshot of a
disk-backed array. The parent's writes to the frozen array are the library's to handle,
not a crash for faulthandler to report; a real crash still reaches faulthandler."""
import ctypes
import faulthandler
import os
import sys

import numpy as np

libc = ctypes.CDLL(None)
libc.bigmaac_owns.argtypes = [ctypes.c_void_p]

a = np.ones(8 << 20)  # 64 MiB: disk-backed
assert libc.bigmaac_owns(a.ctypes.data), "the array is not disk-backed"
read_end, write_end = os.pipe()
pid = os.fork()
if pid == 0:
    os.close(write_end)
    os.read(read_end, 1)
    os._exit(0 if float(a.sum()) == float(a.size) else 3)
os.close(read_end)
faulthandler.enable()
a[:] = 2.0  # every chunk is frozen: each first write faults into the library
ok = float(a.sum()) == 2.0 * a.size
os.write(write_end, b"x")
_, status = os.waitpid(pid, 0)
print("ok" if ok and status == 0 else "bad %s %d" % (ok, status))
sys.stdout.flush()
if len(sys.argv) > 1 and sys.argv[1] == "crash":
    ctypes.string_at(0)  # a real segfault: faulthandler reports it, the process dies
