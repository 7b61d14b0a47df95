"""Page-out throughput as a fraction of the disk's sequential write bandwidth, measured
in this run on the same file system, alternating, and reported as medians.

The disk's bandwidth is the better of two ways to write it sequentially: O_DIRECT with
32 writes in flight (what fio measures), and the kernel's write-back of dirty page cache
(what a page-out itself relies on). The ratio is against the better one."""
import argparse
import json
import os
import statistics
import subprocess
import tempfile


def run_json(cmd, env=None):
    out = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--library", required=True)
    parser.add_argument("--program", required=True, help="bench/build/pageout")
    parser.add_argument("--dir", default="/var/tmp", help="on the disk to measure (not tmpfs)")
    parser.add_argument("--mib", type=int, default=1024, help="dirty data per round")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bigmaac-pageout-bench-", dir=args.dir) as root:
        env = {k: v for k, v in os.environ.items() if not k.startswith("BIGMAAC_")}
        env.update(
            LD_PRELOAD=args.library,
            BIGMAAC_DIR=os.path.join(root, "swap"),
            BIGMAAC_SEGMENT_DIR=os.path.join(root, "segments"),
            # The budget would start write-back during the fill: measure the page-out alone.
            BIGMAAC_DIRTY_BUDGET="0",
        )
        direct, writeback, pageout, stall = [], [], [], []
        for _ in range(args.rounds):
            d = run_json([args.program, "disk", root, str(args.mib)])
            w = run_json([args.program, "writeback", root, str(args.mib)])
            p = run_json([args.program, "run", str(args.mib)], env)
            c = run_json([args.program, "run-churn", str(args.mib)], env)
            direct.append(d["mb_per_s"])
            writeback.append(w["mb_per_s"])
            pageout.append(p["mb_per_s"])
            stall.append(c["alloc_stall_ms"])
            print(f"  O_DIRECT {d['mb_per_s']:7.1f}  write-back {w['mb_per_s']:7.1f} "
                  f"({w['bytes'] >> 20} MiB)  "
                  f"page-out {p['mb_per_s']:7.1f} MB/s ({p['bytes'] >> 20} MiB written, "
                  f"resident {p['resident_before'] >> 20} -> {p['resident_after'] >> 20} MiB, "
                  f"with another thread allocating: longest alloc+free {c['alloc_stall_ms']:.1f} ms "
                  f"in {c['alloc_pairs']} pairs)",
                  flush=True)
    disk_mb = max(statistics.median(direct), statistics.median(writeback))
    pageout_mb = statistics.median(pageout)
    print(json.dumps({
        "mib": args.mib,
        "direct_mb_per_s": statistics.median(direct),
        "writeback_mb_per_s": statistics.median(writeback),
        "pageout_mb_per_s": pageout_mb,
        "ratio": round(pageout_mb / disk_mb, 3),
        "alloc_stall_ms": statistics.median(stall),
        "load_average": os.getloadavg()[0],
    }))


if __name__ == "__main__":
    main()
