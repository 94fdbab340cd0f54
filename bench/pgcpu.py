"""The local PostgreSQL server's CPU time, read from /proc: what the database spent on a step.

A distributed write's cost lands in the database's backends, not in the Spark tasks that wait
for them; the benchmarks read this before and after a step to size the database apart from
the cluster.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["postgres_cpu_s"]


def postgres_cpu_s() -> float:
    """CPU seconds the local PostgreSQL server has used so far, ended backends included.

    Every live `postgres` process's user + system time, plus the postmaster's reaped
    children's (where a backend's time goes when its connection closes): the difference of
    two readings is what the server spent between them, whatever connected.
    """
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            raw = stat.read_text()
        except OSError:
            continue
        name = raw[raw.index("(") + 1 : raw.rindex(")")]
        if name != "postgres":
            continue
        fields = raw[raw.rindex(")") + 2 :].split()
        parent = int(fields[1])
        total += int(fields[11]) + int(fields[12])  # utime, stime
        if parent == 1 or _name(parent) != "postgres":  # the postmaster: add its reaped backends
            total += int(fields[13]) + int(fields[14])
    return total / tick


def _name(pid: int) -> str:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    return raw[raw.index("(") + 1 : raw.rindex(")")]
