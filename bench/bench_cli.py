"""CLI start-up: `rapport --help` and `rapport --version` against a bare `python -c pass`, in one run.

Usage: python -m bench.bench_cli [--runs 5]

Each figure is the median wall time of ``--runs`` fresh interpreters (``python -m cli ...``, the same
code the `rapport` script runs), so it includes interpreter start-up; `python -c pass` is timed in
the same run as the floor, and `rapport nlu --help` (which imports the NLU command's module) as
the cost of a loaded command group. Target: `--help` and `--version` under 1 s.

Wall time on a shared machine mostly measures the other processes; the CPU time the child used
(user + system) does not, so the verdict is on the median CPU time and the wall time is printed
beside it, with its ratio to `python -c pass` measured in the same run.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGET_S = 1.0
CASES: dict[str, list[str]] = {
    "python -c pass": ["-c", "pass"],
    "rapport --help": ["-m", "cli", "--help"],
    "rapport --version": ["-m", "cli", "--version"],
    "rapport nlu --help": ["-m", "cli", "nlu", "--help"],
}


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def time_once(args: list[str]) -> tuple[float, float]:
    """Wall and CPU seconds of one fresh interpreter running ``args`` to completion (exit 0)."""
    cpu = _children_cpu()
    started = time.perf_counter()
    subprocess.run([sys.executable, *args], cwd=ROOT, check=True, capture_output=True, timeout=120)
    return time.perf_counter() - started, _children_cpu() - cpu


def main(argv: list[str] | None = None) -> int:
    """Time each case ``--runs`` times, interleaved, and print medians and ratios to the floor."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args(argv)
    wall: dict[str, list[float]] = {name: [] for name in CASES}
    cpu: dict[str, list[float]] = {name: [] for name in CASES}
    for case in CASES.values():  # one untimed run each: the page cache, .pyc files
        time_once(case)
    for _ in range(args.runs):
        for name, case in CASES.items():
            seconds, used = time_once(case)
            wall[name].append(seconds)
            cpu[name].append(used)
    floor = statistics.median(wall["python -c pass"])
    cpu_floor = statistics.median(cpu["python -c pass"])
    print(f"CLI start-up, median of {args.runs} fresh interpreters ({sys.executable})")
    print(f"{'command':22s} {'wall s':>8s} {'x pass':>7s} {'CPU s':>7s} {'x pass':>7s}")
    for name in CASES:
        seconds, used = statistics.median(wall[name]), statistics.median(cpu[name])
        print(
            f"{name:22s} {seconds:8.3f} {seconds / floor:7.1f} {used:7.3f} {used / max(cpu_floor, 1e-3):7.1f}"
        )
    worst = max(statistics.median(cpu[name]) for name in ("rapport --help", "rapport --version"))
    worst_wall = max(statistics.median(wall[name]) for name in ("rapport --help", "rapport --version"))
    verdict = "meets" if worst < TARGET_S else "MISSES"
    print(
        f"--help / --version: {worst:.3f} s CPU ({worst_wall:.3f} s wall) at worst, "
        f"{verdict} the {TARGET_S:g} s target"
    )
    return 0 if worst < TARGET_S else 1


if __name__ == "__main__":
    sys.exit(main())
