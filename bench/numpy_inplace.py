"""numpy arithmetic in place: `np.add(a, b, out=c)` on 256 MiB arrays, 20 times. Prints one
JSON object.

No allocation in the timed loop: this measures how fast code runs on memory that is
already there, disk-backed or not (page sizes, TLB reach, placement of the arrays)."""
import json
import time

import numpy as np

N = (256 << 20) // 8  # float64 elements in 256 MiB
ITERATIONS = 20

a = np.ones(N)
b = np.full(N, 2.0)
c = np.empty(N)
np.add(a, b, out=c)  # every page mapped before the clock starts
start = time.perf_counter()
for _ in range(ITERATIONS):
    np.add(a, b, out=c)
elapsed = time.perf_counter() - start
assert c[0] == 3.0 and c[-1] == 3.0
print(json.dumps({"workload": "numpy_inplace", "iterations": ITERATIONS,
                  "seconds": round(elapsed, 4)}))
