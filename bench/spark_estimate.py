"""Cluster size for 100M users / 2B events in 30 minutes, from Spark runs of two or more sizes.

Each part of the run is fitted, across the sizes, as a line in the rows it works on (events for
the features, users for the rest; user-iterations for KMeans, whose iteration count varies):

    task time (core-seconds, summed over Spark's tasks) = a + b · rows
    serial time (wall − task time / cores: the driver and the scheduler)  = F + s · rows

`b` is the per-row cost that a cluster spreads over its cores, `F` what no core count removes
(job start-up, one job per KMeans iteration), `s` driver work that grows with the data (the
collect of every (user, segment) pair, the store write). With C cores the run takes

    T(C) = Σ (F + s · N) + Σ b · N / C,   so   C = Σ b · N / (1800 s − Σ (F + s · N)).

When the serial part alone passes 30 minutes no core count does it, and the estimate says so
and gives the cores for the parallel part on its own (what the run needs once the driver-side
per-user work moves to the executors).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["Part", "estimate", "fit_parts"]

TARGET_USERS = 100_000_000
TARGET_EVENTS = 2_000_000_000
TARGET_SECONDS = 30 * 60
CORES_PER_EXECUTOR = 8
DATABASE_CORES = 16
"""The PostgreSQL server the estimate assumes for the executors' membership write."""


@dataclass(frozen=True)
class Part:
    """One part's fitted costs: per row (parallel and serial) and fixed, in seconds."""

    name: str
    unit: str
    rows: tuple[float, ...]
    task_s: tuple[float, ...]
    serial_s: tuple[float, ...]
    per_row_core_s: float
    fixed_core_s: float
    per_row_serial_s: float
    fixed_serial_s: float
    target_rows: float
    idle_s: tuple[float, ...] = ()
    """Per size: time stages ran on fewer cores than there were (stage time − task time / cores)."""
    per_row_idle_s: float = 0.0
    fixed_idle_s: float = 0.0

    @property
    def target_core_s(self) -> float:
        return max(self.per_row_core_s, 0.0) * self.target_rows

    @property
    def target_serial_s(self) -> float:
        return max(self.fixed_serial_s, 0.0) + max(self.per_row_serial_s, 0.0) * self.target_rows

    @property
    def target_idle_s(self) -> float:
        return max(self.fixed_idle_s, 0.0) + max(self.per_row_idle_s, 0.0) * self.target_rows


def _line(xs: Sequence[float], ys: Sequence[float], *, falling: str = "origin") -> tuple[float, float]:
    """Least-squares (intercept, slope), with a fallback where one line cannot be fitted.

    A single size gives the largest size's ratio through the origin (every second taken as
    per row: pessimistic). So does a negative slope (sizes measured under different load)
    with `falling="origin"`; with `falling="flat"` a falling cost is taken as fixed at the
    largest size's value (for the serial part: it does not grow).
    """
    largest = int(np.argmax(xs))
    origin = (0.0, ys[largest] / xs[largest] if xs[largest] else 0.0)
    if len(set(xs)) < 2:
        return origin
    slope, intercept = np.polyfit(np.asarray(xs, dtype=float), np.asarray(ys, dtype=float), 1)
    if slope >= 0:
        return float(intercept), float(slope)
    return origin if falling == "origin" else (float(ys[largest]), 0.0)


def _task(run: dict[str, Any], groups: tuple[str, ...], basis: str = "task_s") -> float:
    """Summed task time (`task_s`) or task CPU time (`cpu_s`) of the job groups, in seconds."""
    return sum(float(run["groups"].get(g, {}).get(basis, 0.0)) for g in groups)


def _iterations(run: dict[str, Any]) -> int:
    return sum(int(i) for _, i in run["kmeans_iterations"])


def fit_parts(
    records: Sequence[dict[str, Any]], *, target_iterations: float | None = None, basis: str = "task_s"
) -> list[Part]:
    """Fit each part over the runs (each a `bench_spark` JSON record with a `spark` entry).

    `basis` is what a core's work is measured in: `task_s`, the tasks' run time (on a loaded
    machine it includes waiting for a CPU: an upper bound), or `cpu_s`, their CPU time (without
    the JVM's compiler and GC threads: a lower bound). Where the records have each group's
    stage time (`stage_s`: while at least one of its stages ran), the serial part is wall time
    with no stage running (the driver, job scheduling) and the rest of the gap, stages that ran
    on fewer cores than there were, is kept apart as `idle`; older records only have the gap as
    a whole (wall time less task time over the cores), all of it counted as serial.
    """
    runs = sorted((r["spark"] for r in records), key=lambda r: r["users"])
    cores = [float(r["cores"]) for r in sorted(records, key=lambda r: r["spark"]["users"])]
    iterations = target_iterations if target_iterations is not None else float(_iterations(runs[-1]))
    specs: list[tuple[str, str, list[float], list[float], list[float], list[float], float]] = []
    for name, unit, rows, groups, wall, target in (
        (
            "features (Spark SQL, Parquet scan, shuffle by user)",
            "event",
            [r["events"] for r in runs],
            ("features", "setup"),
            [r["timings"]["features_s"] for r in runs],
            TARGET_EVENTS,
        ),
        (
            "KMeans fits (k = 2..8)",
            "user-iteration",
            [r["users"] * _iterations(r) for r in runs],
            ("kmeans",),
            [r["wall"].get("kmeans", 0.0) for r in runs],
            TARGET_USERS * iterations,
        ),
        (
            "silhouettes (every row, k = 2..8)",
            "user",
            [r["users"] for r in runs],
            ("silhouette",),
            [r["wall"].get("silhouette", 0.0) for r in runs],
            TARGET_USERS,
        ),
        (
            "segmentation rest (scaling, medians, name matching)",
            "user",
            [r["users"] for r in runs],
            ("segmentation",),
            [
                r["timings"]["segmentation_s"]
                - r["wall"].get("kmeans", 0.0)
                - r["wall"].get("silhouette", 0.0)
                - r["wall"].get("membership_write", 0.0)
                for r in runs
            ],
            TARGET_USERS,
        ),
        (
            "rules (baskets, FPGrowth, item count)",
            "user",
            [r["users"] for r in runs],
            ("rules", "fpgrowth"),
            [r["timings"]["rules_s"] for r in runs],
            TARGET_USERS,
        ),
        (
            "store (segment intents in Spark, completion in SQL)",
            "user",
            [r["users"] for r in runs],
            ("store",),
            [r["timings"]["store_s"] for r in runs],
            TARGET_USERS,
        ),
    ):
        task = [_task(r, groups) for r in runs]
        if all(any("stage_s" in r["groups"].get(g, {}) for g in groups) for r in runs):
            staged = [_task(r, groups, "stage_s") for r in runs]
            serial = [max(w - s, 0.0) for w, s in zip(wall, staged, strict=True)]
            idle = [max(s - t / c, 0.0) for s, t, c in zip(staged, task, cores, strict=True)]
        else:
            serial = [max(w - t / c, 0.0) for w, t, c in zip(wall, task, cores, strict=True)]
            idle = [0.0 for _ in runs]
        specs.append((name, unit, rows, [_task(r, groups, basis) for r in runs], serial, idle, target))
    parts = []
    for name, unit, rows, task, serial, idle, target in specs:
        fixed_core, per_row_core = _line(rows, task)
        fixed_serial, per_row_serial = _line(rows, serial, falling="flat")
        fixed_idle, per_row_idle = _line(rows, idle, falling="flat")
        parts.append(
            Part(
                name,
                unit,
                tuple(rows),
                tuple(task),
                tuple(serial),
                per_row_core,
                fixed_core,
                per_row_serial,
                fixed_serial,
                target,
                tuple(idle),
                per_row_idle,
                fixed_idle,
            )
        )
    return parts


def estimate(records: Sequence[dict[str, Any]]) -> str:
    """The estimate as text: every part's fit, the sums, and the cores (or why no count suffices)."""
    if not records or any("spark" not in r for r in records):
        raise ValueError("the estimate needs bench_spark records with a Spark run")
    runs = sorted((r["spark"] for r in records), key=lambda r: r["users"])
    largest = runs[-1]
    single = len({r["users"] for r in runs}) < 2
    lines = [
        *(["one size only: every cost is taken as per row (no fixed part separated): pessimistic"] * single),
        "sizes: " + ", ".join(f"{r['users']:,} users / {r['events']:,} events" for r in runs),
        f"KMeans iterations per k at {largest['users']:,} users: {largest['kmeans_iterations']} "
        f"(sum {_iterations(largest)}; the cap is 100 per k, 700 in all)",
        "",
        "| part | per row, core-s | fixed, core-s | serial per row, s | serial fixed, s "
        "| at target: core-s | serial s | cores idle in stages, s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    parts = fit_parts(records)
    for p in parts:
        lines.append(
            f"| {p.name} (per {p.unit}) | {p.per_row_core_s:.3g} | {p.fixed_core_s:.3g} | "
            f"{p.per_row_serial_s:.3g} | {p.fixed_serial_s:.3g} | {p.target_core_s:,.0f} "
            f"| {p.target_serial_s:,.0f} | {p.target_idle_s:,.0f} |"
        )
    parallel = sum(p.target_core_s for p in parts)
    serial = sum(p.target_serial_s for p in parts)
    session = float(largest.get("session_s", 0.0))
    written = [r for r in runs if "membership_write" in r.get("db_cpu", {})]
    if written:
        # The executors' write waits on one database: its time is the server's CPU over its
        # cores, not the Spark tasks' (their run time is mostly that wait).
        users = np.array([float(r["users"]) for r in written])
        cpu = np.array([float(r["db_cpu"]["membership_write"]) for r in written])
        per_user = float((users @ cpu) / (users @ users))
        database_s = per_user * TARGET_USERS / DATABASE_CORES
        serial += database_s
        lines += [
            "",
            f"memberships into PostgreSQL (executors' JDBC write): {per_user * 1e6:.2f} µs of server CPU "
            f"per user ({', '.join(f'{c:.1f} s at {u:,.0f}' for u, c in zip(users, cpu, strict=True))}); "
            f"at 100M users on a {DATABASE_CORES}-core server: {database_s:,.0f} s, counted as serial "
            "(assumes inserts spread over the server's cores, which 2 cores here cannot show)",
        ]
    lines += [
        "",
        f"parallel work at 100M users / 2B events: {parallel:,.0f} core-s "
        f"({parallel / 3600:,.1f} core-hours)",
        f"serial (driver and per-job) time: {serial:,.0f} s, plus {session:.0f} s session start",
    ]
    budget = TARGET_SECONDS - serial - session
    if budget > 0:
        cores = parallel / budget
        lines.append(
            f"cores = {parallel:,.0f} / ({TARGET_SECONDS} − {serial:,.0f} − {session:.0f}) = {cores:,.0f} "
            f"≈ {int(np.ceil(cores / CORES_PER_EXECUTOR)):,} executors of {CORES_PER_EXECUTOR} cores"
        )
    else:
        lines.append(
            f"the serial part alone ({serial + session:,.0f} s) is over {TARGET_SECONDS} s: no core count "
            "meets 30 minutes with the driver doing per-user work"
        )
    fixed_only = sum(max(p.fixed_serial_s, 0.0) for p in parts) + session
    cores = parallel / max(TARGET_SECONDS - fixed_only, 1.0)
    lines.append(
        f"with the per-user driver work moved to the executors (only the fixed {fixed_only:,.0f} s serial): "
        f"{parallel:,.0f} / ({TARGET_SECONDS} − {fixed_only:,.0f}) = {cores:,.0f} cores "
        f"≈ {int(np.ceil(cores / CORES_PER_EXECUTOR)):,} executors of {CORES_PER_EXECUTOR}"
    )
    idle = sum(p.target_idle_s for p in parts)
    if idle > 0:
        lines.append(
            f"stages that ran on fewer cores than the machine had: {idle:,.0f} s at the target, spread "
            "like the tasks above (a cluster's partitions grow with the data); counted as serial instead "
            + (
                f"(an upper bound): {parallel:,.0f} / ({TARGET_SECONDS} − {serial + session + idle:,.0f}) = "
                f"{parallel / (TARGET_SECONDS - serial - session - idle):,.0f} cores"
                if TARGET_SECONDS - serial - session - idle > 0
                else f"(an upper bound), {serial + session + idle:,.0f} s: over {TARGET_SECONDS} s"
            )
        )
    worst = fit_parts(records, target_iterations=700.0)
    extra = sum(p.target_core_s for p in worst) - parallel
    lines.append(
        f"if every KMeans fit ran to its cap of 100 iterations: +{extra:,.0f} core-s "
        f"(→ {(parallel + extra) / max(TARGET_SECONDS - fixed_only, 1.0):,.0f} cores)"
    )
    on_cpu = sum(p.target_core_s for p in fit_parts(records, basis="cpu_s"))
    lines.append(
        f"on the tasks' CPU time instead of their run time (a lower bound): {on_cpu:,.0f} core-s "
        f"→ {on_cpu / max(TARGET_SECONDS - fixed_only, 1.0):,.0f} cores with the driver work moved"
    )
    return "\n".join(lines)
