"""Everyday pure-Python work with Python's own allocator: parse, group, sort, format.

Builds records, round-trips them through JSON, groups and sorts them, formats a report
and matches it with a regular expression. pymalloc serves objects up to 512 bytes; the
rest (list and dict tables, long strings, the JSON text) goes through malloc, which is
what a kernel's Python does every day. Prints one JSON object with the seconds spent;
ROUNDS on the command line (fewer under callgrind).
"""
import collections
import json
import re
import sys
import time

WORD = re.compile(r"[a-z]+-(\d+)")


def one_round(seed):
    records = [
        {"id": i, "name": f"user-{(i * 7919 + seed) % 1000}", "tags": ["a", "b", str(i % 13)],
         "score": (i * 2654435761 + seed) % 10007 / 100.0}
        for i in range(4000)
    ]
    records = json.loads(json.dumps(records))
    groups = collections.defaultdict(list)
    for r in records:
        groups[r["name"]].append(r["score"])
    ranked = sorted(groups.items(), key=lambda kv: (-sum(kv[1]), kv[0]))
    report = "\n".join(f"{name:>12} {len(scores):4d} {sum(scores):10.2f}"
                       for name, scores in ranked)
    return sum(int(m.group(1)) for m in WORD.finditer(report))


def main():
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 40
    start = time.perf_counter()
    checksum = sum(one_round(seed) for seed in range(rounds))
    print(json.dumps({"workload": "python_mix", "seconds": time.perf_counter() - start,
                      "checksum": checksum}))


if __name__ == "__main__":
    main()
