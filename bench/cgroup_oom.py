"""A numpy job whose data is 3x a memory cgroup's limit, run plain and under the preload.

Needs root. Makes a memory cgroup (v1 at /sys/fs/cgroup/memory, or v2 where the unified
hierarchy offers the memory controller), runs the job in it both ways, prints one line
per run and removes the cgroup afterwards. Expected: the plain run is OOM-killed
(signal 9), the preloaded run completes with the right result."""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time

JOB = r"""
import numpy as np
n = {elements}
a = np.zeros(n)            # calloc(n * 8, 1): disk-backed under the preload
for start in range(0, n, 1 << 24):
    a[start:start + (1 << 24)] = 1.0
total = a.sum()
assert total == n, total
print("ok", total)
"""


class MemoryCgroup:
    def __init__(self, limit):
        name = f"bigmaac-bench-{os.getpid()}"
        v1 = "/sys/fs/cgroup/memory"
        if os.path.isdir(v1):
            self.path, self.limit_file = os.path.join(v1, name), "memory.limit_in_bytes"
        elif "memory" in open("/sys/fs/cgroup/cgroup.controllers").read().split():
            self.path, self.limit_file = os.path.join("/sys/fs/cgroup", name), "memory.max"
        else:
            sys.exit("cgroup_oom: no memory cgroup controller available")
        os.mkdir(self.path)
        self.write(self.limit_file, str(limit))
        if self.limit_file == "memory.max":
            self.write("memory.swap.max", "0")

    def write(self, name, value):
        with open(os.path.join(self.path, name), "w") as f:
            f.write(value)

    def command(self, argv):
        procs = os.path.join(self.path, "cgroup.procs")
        return ["/bin/sh", "-c", f'echo $$ > {procs} && exec "$@"', "sh", *argv]

    def remove(self):
        for _ in range(50):  # the last member may take a moment to leave
            try:
                os.rmdir(self.path)
                return
            except OSError:
                time.sleep(0.1)
        print(f"cgroup_oom: could not remove {self.path}", file=sys.stderr)


def run(cgroup, argv, env):
    start = time.monotonic()
    done = subprocess.run(cgroup.command(argv), env=env, capture_output=True, text=True)
    return done.returncode, time.monotonic() - start, (done.stdout + done.stderr).strip()


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--library", required=True)
    parser.add_argument("--python", default=sys.executable)
    parser.add_argument("--limit-mib", type=int, default=512)
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("cgroup_oom: needs root to make a memory cgroup")
    limit = args.limit_mib << 20
    job = JOB.format(elements=3 * limit // 8)
    swap_dir = tempfile.mkdtemp(prefix="bigmaac-bench-", dir="/var/tmp")
    plain = dict(os.environ)
    plain.pop("LD_PRELOAD", None)
    preloaded = dict(plain, LD_PRELOAD=args.library, BIGMAAC_DIR=swap_dir)
    cgroup = MemoryCgroup(limit)
    try:
        print(f"numpy job of {3 * args.limit_mib} MiB in a {args.limit_mib} MiB memory cgroup")
        for label, env in (("glibc", plain), ("bigmaac", preloaded)):
            code, seconds, output = run(cgroup, [args.python, "-c", job], env)
            outcome = "completed" if code == 0 else (
                "OOM-killed (signal 9)" if code in (-9, 137) else f"failed ({code})")
            print(f"{label:<8} {outcome:<22} {seconds:6.1f} s  {output.splitlines()[-1] if output else ''}")
    finally:
        cgroup.remove()
        shutil.rmtree(swap_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
