"""numpy temporaries: `c = a + b` on 256 MiB arrays, 20 times. Prints one JSON object.

Each `a + b` allocates a fresh 256 MiB result and drops the previous one, the pattern
that makes glibc map (and fault in) new memory every time."""
import json
import time

import numpy as np

N = (256 << 20) // 8  # float64 elements in 256 MiB
ITERATIONS = 20

a = np.ones(N)
b = np.full(N, 2.0)
c = a + b  # warm up numpy itself, not the allocator
del c
start = time.perf_counter()
for _ in range(ITERATIONS):
    c = a + b
elapsed = time.perf_counter() - start
assert c[0] == 3.0 and c[-1] == 3.0
print(json.dumps({"workload": "numpy_temporaries", "iterations": ITERATIONS,
                  "seconds": round(elapsed, 4)}))
