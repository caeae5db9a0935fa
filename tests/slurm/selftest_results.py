#!/usr/bin/env python3
"""Reads the selftest job's results for the Slurm tests.

  selftest_results.py same A/selftest.json B/selftest.json   # exit 1 unless both are complete with
                                                             # the same (stage, chunk, value) rows
  selftest_results.py ranks FILE STAGE                        # the world ranks that did a stage's chunks
  selftest_results.py duplicates PROGRESS.jsonl               # (stage, chunk) pairs recorded twice
"""
import json
import sys


def rows(path):
    with open(path) as f:
        data = json.load(f)
    if data.get("complete") is not True:
        sys.exit(f"{path}: not marked complete")
    return data, sorted((c["queue"], c["id"], c["value"]) for c in data["chunks"])


def main(argv):
    if len(argv) == 4 and argv[1] == "same":
        (a_data, a), (b_data, b) = rows(argv[2]), rows(argv[3])
        if a != b:
            only_a, only_b = sorted(set(a) - set(b)), sorted(set(b) - set(a))
            sys.exit(f"results differ: {len(a)} vs {len(b)} rows; only in {argv[2]}: {only_a[:5]}; "
                     f"only in {argv[3]}: {only_b[:5]}")
        expected = a_data["num_chunks"] * (2 if a_data["two_stages"] else 1)
        if len(a) != expected:
            sys.exit(f"{argv[2]}: {len(a)} rows, expected {expected}")
        print(f"same {len(a)} rows")
    elif len(argv) == 4 and argv[1] == "ranks":
        data, _ = rows(argv[2])
        print(" ".join(str(r) for r in sorted({c["rank"] for c in data["chunks"] if c["queue"] == int(argv[3])})))
    elif len(argv) == 3 and argv[1] == "duplicates":
        seen, dups = set(), 0
        with open(argv[2]) as f:
            for line in f:
                if line.strip():
                    key = tuple(json.loads(line)[k] for k in ("queue", "id"))
                    dups += key in seen
                    seen.add(key)
        print(dups)
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
