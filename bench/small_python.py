"""Malloc-heavy Python: dicts, lists, strings and bytes made and dropped in a loop.

Run with PYTHONMALLOC=malloc (run.py sets it) so every object goes through malloc and
free, not through pymalloc's pools: the worst case for the pass-through path. Prints
one JSON object with the seconds spent in the loop; ROUNDS on the command line.
"""
import json
import sys
import time


def churn(rounds):
    kept = []
    for i in range(rounds):
        row = {str(j): [j, str(j) * 3, b"x" * (j % 200)] for j in range(40)}
        kept.append(row)
        if len(kept) > 64:
            kept.pop(0)
    return len(kept)


def main():
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 60_000  # fewer under callgrind
    start = time.perf_counter()
    churn(rounds)
    print(json.dumps({"workload": "small_python", "seconds": time.perf_counter() - start}))


if __name__ == "__main__":
    main()
