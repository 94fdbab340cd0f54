"""Run every benchmark, one process each, and print their figures (what `make bench` does).

    python -m bench.run_all            # the sizes below: about 30-40 minutes on 2 cores
    python -m bench.run_all --only nlu,store

Each benchmark also runs on its own with larger sizes (its docstring says how); the figures
recorded in bench/RESULTS.md name the exact command that produced them. A benchmark that
fails does not stop the others; the exit code is non-zero if any failed.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time

# name -> arguments: sizes chosen so the whole run fits in well under an hour on 2 cores.
BENCHMARKS: dict[str, list[str]] = {
    "store": ["--events", "200000", "--single", "2000"],
    "nlu": [],
    "bot": ["--db", "both", "--updates", "2000", "--rate", "100", "--seconds", "10"],
    "analytics": ["--users", "20000", "--db", "sqlite:///var/bench_analytics_20k.db"],
    "sequence": ["--users", "20000", "--epochs", "10"],
    "scheduler": ["--users", "3000", "--restarts", "5"],
    "simulation": ["--users", "100000", "--write-users", "20000"],
    "experiments": [],
    "questions": ["--questions", "5000"],
}


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--only", default="", help="comma-separated benchmark names: " + ",".join(BENCHMARKS))
    args = parser.parse_args()
    chosen = [name for name in args.only.split(",") if name] or list(BENCHMARKS)
    unknown = sorted(set(chosen) - set(BENCHMARKS))
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(unknown)}")
    failed: list[str] = []
    for name in chosen:
        command = [sys.executable, "-m", f"bench.bench_{name}", *BENCHMARKS[name]]
        print(f"\n=== {name}: {' '.join(command[1:])}", flush=True)
        started = time.perf_counter()
        code = subprocess.call(command)
        print(f"=== {name}: exit {code} after {time.perf_counter() - started:.0f} s", flush=True)
        if code != 0:
            failed.append(name)
    if failed:
        print(f"\nfailed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
