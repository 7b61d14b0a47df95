"""Run each workload with and without libbigmaac.so, alternating, and report
medians and ratios against glibc measured in the same run."""
import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))

# workload -> (metric, True if higher is better, runs in Python rather than workloads.c)
METRICS = {
    "big_alloc_free": ("p50_us", False, False),
    "first_touch": ("mb_per_s", True, False),
    "small_churn": ("ns_per_op", False, False),
    "small_python": ("seconds", False, True),
    "word_index": ("seconds", False, False),
    "python_mix": ("seconds", False, True),
    "fries_churn": ("ns_per_op", False, False),
    "realloc_growth": ("ms_per_gib", False, False),
    "numpy_temporaries": ("seconds", False, True),
    "numpy_inplace": ("seconds", False, True),
}


def command(args, workload, in_python):
    if in_python:
        return [args.python, os.path.join(HERE, f"{workload}.py")]
    return [args.workloads, workload]


# Workloads that also time the raw disk operation they cannot avoid (reported by the
# preloaded run, measured right after the timed part, on the swap directory's disk).
DISK_BASELINE = {"realloc_growth": "fallocate_ms_per_gib"}

# Extra environment per workload, on both sides.
ENV = {"small_python": {"PYTHONMALLOC": "malloc"}, "fries_churn": {"BIGMAAC_MIN_FRY_SIZE": "4K"}}


def run_once(cmd, env):
    out = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--library", required=True)
    parser.add_argument("--workloads", required=True)
    parser.add_argument("--python", default=sys.executable, help="runs the numpy workloads")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--only", nargs="*", help="run just these workloads")
    parser.add_argument("--swap-dir", default=None, help="defaults to a fresh directory under /var/tmp")
    args = parser.parse_args()
    if not os.path.exists(args.library):
        sys.exit(f"bench: {args.library} is missing; run 'make -C native' first")

    own_swap_dir = args.swap_dir is None
    swap_dir = args.swap_dir or tempfile.mkdtemp(prefix="bigmaac-bench-", dir="/var/tmp")
    try:
        report(args, swap_dir)
    finally:
        if own_swap_dir:
            shutil.rmtree(swap_dir, ignore_errors=True)


def report(args, swap_dir):
    plain = dict(os.environ)
    plain.pop("LD_PRELOAD", None)
    plain["BENCH_DISK_DIR"] = swap_dir  # raw-disk baselines run on the swap directory's disk
    preloaded = dict(plain, LD_PRELOAD=args.library, BIGMAAC_DIR=swap_dir,
                     BIGMAAC_MIN_BIGMAAC_SIZE="32M")

    print(f"machine: {platform.node()} {platform.machine()} {os.cpu_count()} cores, "
          f"Linux {platform.release()}; swap dir {swap_dir}; medians of {args.runs} runs")
    print(f"{'workload':<16} {'metric':<10} {'glibc':>10} {'bigmaac':>10} {'ratio':>8}"
          f"   (best run of each)")
    for workload, (metric, higher_is_better, in_python) in METRICS.items():
        if args.only and workload not in args.only:
            continue
        cmd = command(args, workload, in_python)
        base, ours, disk = [], [], []
        for _ in range(args.runs):  # alternate so drift hits both sides alike
            extra = ENV.get(workload, {})
            base.append(run_once(cmd, dict(plain, **extra))[metric])
            result = run_once(cmd, dict(preloaded, **extra))
            ours.append(result[metric])
            if DISK_BASELINE.get(workload) in result:
                disk.append(result[DISK_BASELINE[workload]])
        b, o = statistics.median(base), statistics.median(ours)
        ratio = (o / b) if higher_is_better else (b / o)
        # The best run of each side too: on a shared virtual machine consecutive runs of
        # one binary differ by 20 %, and noise only ever slows a CPU-bound run down.
        best = max if higher_is_better else min
        bb, bo = best(base), best(ours)
        best_ratio = (bo / bb) if higher_is_better else (bb / bo)
        print(f"{workload:<16} {metric:<10} {b:>10.2f} {o:>10.2f} {ratio:>7.2f}x"
              f"   best {bb:>9.2f} {bo:>9.2f} {best_ratio:>6.2f}x")
        if disk:
            d = statistics.median(disk)
            print(f"{'  raw fallocate':<16} {metric:<10} {d:>10.2f} {o:>10.2f} {d / o:>7.2f}x"
                  "  (same extensions reserved on the same disk, same runs)")
    print("ratio > 1 means BigMaac is faster than glibc on that workload")


if __name__ == "__main__":
    main()
