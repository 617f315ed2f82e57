"""Cold start of a cached ``Pipeline.from_zoo(backend="auto")``: a fresh process imports the package and loads.

    python benchmarks/cold_start.py [--runs 7] [--tree OTHER_CHECKOUT ...] [--weights standin] [--json]

Each run is a new Python process (``python -c``) that imports ``spinepose_deploy``, builds the pipeline from
the bundle cache and the stored auto-selection, and reports the wall time of that and how many times a file was
sha256-hashed. The first run per tree fills the cache (export, probe) and is not counted. With ``--tree`` the
same measurement runs on other checkouts (e.g. ``git archive`` of an older commit), taking turns run by run so a
busy machine's load falls on every tree alike; the ratio to the first tree is the figure to compare (absolute
seconds move with the host's load). Every tree shares one bundle cache: ``SPINEPOSE_DEPLOY_CACHE``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

CHILD = """
import hashlib, json, sys, time
start = time.perf_counter()
calls = [0]
real = hashlib.sha256
def counting(*a, **k):
    calls[0] += 1
    return real(*a, **k)
hashlib.sha256 = counting
from spinepose_deploy import Pipeline
imported = time.perf_counter()
with Pipeline.from_zoo(backend="auto", weights=sys.argv[1], lift=True) as pipe:
    loaded = time.perf_counter()
    choice = pipe.auto_choice
print(json.dumps({"import_s": imported - start, "load_s": loaded - imported, "total_s": loaded - start,
                  "sha256_calls": calls[0], "choice": choice}))
"""


def run_once(tree: Path, weights: str) -> dict:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    done = subprocess.run([sys.executable, "-c", CHILD, weights], env=env, capture_output=True, text=True,
                          check=True, cwd=tree)  # fmt: skip
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--tree", type=Path, action="append", default=[], help="another checkout to compare")
    parser.add_argument("--weights", default="standin", help="weights for every tree (standin: comparable)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    trees = [Path(__file__).resolve().parents[1], *(t.resolve() for t in args.tree)]
    for tree in trees:  # fill the cache: export and probe once, not counted
        run_once(tree, args.weights)
    results: dict[str, list[dict]] = {str(t): [] for t in trees}
    for _ in range(args.runs):
        for tree in trees:
            results[str(tree)].append(run_once(tree, args.weights))
    summary = {}
    for tree, runs in results.items():
        summary[tree] = {key: statistics.median(r[key] for r in runs) for key in ("import_s", "load_s", "total_s")}
        summary[tree]["sha256_calls"] = runs[-1]["sha256_calls"]
        summary[tree]["choice"] = runs[-1]["choice"]
    first = summary[str(trees[0])]["total_s"]
    for tree in summary.values():
        tree["ratio_to_first"] = round(tree["total_s"] / first, 3)
    if args.json:
        print(json.dumps(summary, indent=2))
        return
    for tree, row in summary.items():
        print(f"{tree}: total {row['total_s']:.2f} s (import {row['import_s']:.2f}, load {row['load_s']:.2f}), "
              f"sha256 calls {row['sha256_calls']}, {row['ratio_to_first']:.2f}x the first; {row['choice']}")


if __name__ == "__main__":
    main()
