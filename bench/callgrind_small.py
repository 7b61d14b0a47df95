"""Instructions the pass-through path adds, counted by callgrind: repeatable on a noisy machine.

Each workload runs under `valgrind --tool=callgrind`, plain and with libbigmaac.so preloaded
(fries off, and for small_churn also with BIGMAAC_MIN_FRY_SIZE=4K: requests under it must
cost the same). Counts are the whole program's, so a ratio is the one that time would show
if every instruction cost the same. Start-up (loading, resolving, Python's own start) is
taken out: each figure is the difference between a run of 2N and one of N units of work.

- small_churn: malloc/free pairs of 16-1040 bytes and nothing else, the worst case.
- word_index: a malloc-heavy C program doing real work (workloads.c).
- python_mix: everyday Python with its own allocator (python_mix.py).
- python_mix, PYTHONMALLOC=malloc: the same with every object through malloc.
- small_python, PYTHONMALLOC=malloc: dicts, lists and strings made and dropped.
"""
import argparse
import os
import re
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))


def workloads(args):
    """name -> (command for N units, N, extra environment, unit)."""
    mix = os.path.join(HERE, "python_mix.py")
    churn = os.path.join(HERE, "small_python.py")
    return {
        "small_churn": ([args.workloads, "small_churn"], 200_000, {}, "pair"),
        "small_churn, fries on": ([args.workloads, "small_churn"], 200_000,
                                  {"BIGMAAC_MIN_FRY_SIZE": "4K"}, "pair"),
        "word_index": ([args.workloads, "word_index"], 2, {}, "text"),
        "python_mix": ([args.python, mix], 4, {}, "round"),
        "python_mix, PYTHONMALLOC=malloc": ([args.python, mix], 4,
                                            {"PYTHONMALLOC": "malloc"}, "round"),
        "small_python, PYTHONMALLOC=malloc": ([args.python, churn], 2_000,
                                              {"PYTHONMALLOC": "malloc"}, "round"),
    }


def instructions(cmd, units, env):
    with tempfile.TemporaryDirectory(prefix="bigmaac-callgrind-") as tmp:
        out = os.path.join(tmp, "callgrind.out")
        subprocess.run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
                        *cmd, str(units)], env=env, check=True, capture_output=True)
        with open(out) as f:
            text = f.read()
    return int(re.search(r"^(?:summary|totals): (\d+)", text, re.M).group(1))


def per_unit(cmd, units, env):
    return (instructions(cmd, 2 * units, env) - instructions(cmd, units, env)) / units


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--library", required=True)
    parser.add_argument("--workloads", required=True)
    parser.add_argument("--python", default=sys.executable)
    parser.add_argument("--only", nargs="*", help="run just these workloads")
    args = parser.parse_args()
    if subprocess.run(["which", "valgrind"], capture_output=True).returncode:
        sys.exit("bench: valgrind is missing (make -C bench callgrind installs Debian's)")
    # A fixed hash seed: with Python's random one, dict and set layouts (and so the
    # instruction counts) differ from run to run.
    plain = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD"}
    plain["PYTHONHASHSEED"] = "0"
    swap = tempfile.mkdtemp(prefix="bigmaac-bench-", dir="/var/tmp")
    preloaded = dict(plain, LD_PRELOAD=args.library, BIGMAAC_DIR=swap)
    print(f"{'workload':<36} {'unit':<6} {'glibc':>12} {'bigmaac':>12} {'ratio':>8}")
    try:
        for name, (cmd, units, extra, unit) in workloads(args).items():
            if args.only and name.split(",")[0] not in args.only:
                continue
            base_env = dict(plain, **{k: v for k, v in extra.items() if k.startswith("PYTHON")})
            base = per_unit(cmd, units, base_env)
            ours = per_unit(cmd, units, dict(preloaded, **extra))
            print(f"{name:<36} {unit:<6} {base:12.1f} {ours:12.1f} {ours / base:7.3f}x")
    finally:
        os.rmdir(swap)
    print("instructions per unit of work; ratio = bigmaac / glibc (1.000x: no overhead)")


if __name__ == "__main__":
    main()
