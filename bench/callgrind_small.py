"""Instructions per small malloc/free, counted by callgrind: repeatable on a noisy machine.

Runs the small_churn workload (workloads.c) under `valgrind --tool=callgrind`, plain and
with libbigmaac.so preloaded (fries off, and with BIGMAAC_MIN_FRY_SIZE=4K: requests
under it must cost the same), and prints instructions per malloc/free pair and the ratio
against glibc. Counts are the whole program's, so the ratio is the one that time would
show if every instruction cost the same. Start-up (loading, resolving, the first chunk)
is taken out: the figure is the difference between runs of 2x and 1x the operations.
"""
import argparse
import os
import re
import subprocess
import sys
import tempfile

OPS = 200_000


def instructions(workloads, env, ops):
    with tempfile.TemporaryDirectory(prefix="bigmaac-callgrind-") as tmp:
        out = os.path.join(tmp, "callgrind.out")
        subprocess.run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
                        workloads, "small_churn", str(ops)],
                       env=env, check=True, capture_output=True)
        with open(out) as f:
            text = f.read()
    return int(re.search(r"^(?:summary|totals): (\d+)", text, re.M).group(1))


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--library", required=True)
    parser.add_argument("--workloads", required=True)
    args = parser.parse_args()
    if subprocess.run(["which", "valgrind"], capture_output=True).returncode:
        sys.exit("bench: valgrind is missing (make -C bench callgrind installs Debian's)")
    plain = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD"}
    swap = tempfile.mkdtemp(prefix="bigmaac-bench-", dir="/var/tmp")
    preloaded = dict(plain, LD_PRELOAD=args.library, BIGMAAC_DIR=swap)
    runs = {
        "glibc": plain,
        "bigmaac": preloaded,
        "bigmaac, fries on": dict(preloaded, BIGMAAC_MIN_FRY_SIZE="4K"),
    }
    base = None
    print(f"small_churn, {OPS} malloc/free pairs of 16-1040 bytes, instructions per pair")
    for name, env in runs.items():
        once = instructions(args.workloads, env, OPS)
        per_op = (instructions(args.workloads, env, 2 * OPS) - once) / OPS
        base = base or per_op
        print(f"{name:<20} {per_op:8.1f}  ratio {per_op / base:.3f}x")
    os.rmdir(swap)


if __name__ == "__main__":
    main()
