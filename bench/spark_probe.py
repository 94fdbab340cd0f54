"""What one benchmark run of Spark cost, per part: task time from Spark's own status API, wall time here.

Every job is tagged with a job group: the pipeline's step (`features`, `segmentation`, `rules`,
`store`, from its progress callback) or, inside it, the MLlib call that started it (`kmeans`
for `KMeans.fit`, `silhouette` for `ClusteringEvaluator.evaluate`, `fpgrowth` for
`FPGrowth.fit`). After the run the driver's REST API (`/api/v1/applications/…/jobs` and
`/stages`) gives each stage's summed task time (`executorRunTime`: core-seconds, what a
cluster divides among its cores), records read and shuffle bytes; the wrappers give each
part's wall time, KMeans' iteration counts and the driver's `collect` time. The memory of a
process tree (the engine's Python process and the JVM it starts) is sampled from /proc by the
parent, so the peak is the tree's at one instant, not a sum of peaks at different times.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

__all__ = ["SparkProbe", "TreeMemory", "descendants"]

SPARK_UI_CONF = {
    "spark.ui.enabled": "true",
    "spark.ui.port": "0",
    "spark.ui.showConsoleProgress": "false",
    "spark.ui.retainedJobs": "100000",
    "spark.ui.retainedStages": "100000",
    "spark.sql.ui.retainedExecutions": "100000",
}
"""The status API needs the UI; every job of the run must still be there when it is read."""


def descendants(root: int) -> list[int]:
    """Every process below `root` (the JVM that PySpark starts), read from /proc."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            parents[int(entry.name)] = int(fields[1])
    found, frontier = [], [root]
    while frontier:
        current = frontier.pop()
        children = [pid for pid, parent in parents.items() if parent == current]
        found += children
        frontier += children
    return found


def _status_kb(pid: int, field: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


class TreeMemory:
    """Samples the summed resident memory of a process and all its descendants, in a thread."""

    def __init__(self, pid: int, *, interval: float = 0.25) -> None:
        self.pid = pid
        self.interval = interval
        self.peak_mb = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.is_set():
            pids = [self.pid, *descendants(self.pid)]
            total = sum(_status_kb(pid, "VmRSS:") for pid in pids) / 1024
            self.peak_mb = max(self.peak_mb, total)
            self._stop.wait(self.interval)

    def __enter__(self) -> TreeMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


class SparkProbe:
    """Job groups and wall timers around a Spark run, read back through the status API."""

    def __init__(self, spark: Any) -> None:
        self.spark = spark
        self.step = "setup"
        self.wall: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)
        self.kmeans_iterations: list[tuple[int, int]] = []
        self.db_cpu: dict[str, float] = defaultdict(float)
        """PostgreSQL's CPU seconds inside each part wrapped by `wrap_function(..., database=True)`."""
        self._restore: list[Callable[[], None]] = []

    def progress(self, step: str) -> None:
        """The pipeline's progress callback: later jobs belong to `step`."""
        self.step = step
        self.spark.sparkContext.setJobGroup(step, step)

    @contextmanager
    def part(self, name: str) -> Iterator[None]:
        """Jobs started inside belong to `name`; its wall time is added up."""
        context = self.spark.sparkContext
        context.setJobGroup(name, name)
        started = time.perf_counter()
        try:
            yield
        finally:
            self.wall[name] += time.perf_counter() - started
            self.calls[name] += 1
            context.setJobGroup(self.step, self.step)

    def _wrap(
        self, owner: Any, method: str, name: str, after: Callable[[Any, Any], None] | None = None
    ) -> None:
        original = getattr(owner, method)
        probe = self

        def wrapper(this: Any, *args: Any, **kwargs: Any) -> Any:
            with probe.part(name):
                result = original(this, *args, **kwargs)
            if after is not None:
                after(this, result)
            return result

        setattr(owner, method, wrapper)
        self._restore.append(lambda: setattr(owner, method, original))

    def wrap_function(self, module: Any, function: str, name: str) -> None:
        """Time a module-level function as part `name`, with the local PostgreSQL's CPU inside it.

        For the steps whose work is the database's (the executors' membership write, the
        overlap and completion statements): their Spark task time is mostly waiting on it.
        """
        from bench.pgcpu import postgres_cpu_s

        original = getattr(module, function)
        probe = self

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            before = postgres_cpu_s()
            try:
                with probe.part(name):
                    return original(*args, **kwargs)
            finally:
                probe.db_cpu[name] += postgres_cpu_s() - before

        setattr(module, function, wrapper)
        self._restore.append(lambda: setattr(module, function, original))

    def install(self) -> None:
        """Wrap MLlib's KMeans fit, the silhouette, FPGrowth's fit and the driver's collects."""
        from pyspark.ml.clustering import KMeans
        from pyspark.ml.evaluation import ClusteringEvaluator
        from pyspark.ml.fpm import FPGrowth

        def iterations(estimator: Any, model: Any) -> None:
            self.kmeans_iterations.append((int(estimator.getK()), int(model.summary.numIter)))

        self._wrap(KMeans, "fit", "kmeans", iterations)
        self._wrap(ClusteringEvaluator, "evaluate", "silhouette")
        self._wrap(FPGrowth, "fit", "fpgrowth")
        # Spark 4's sessions make `pyspark.sql.classic.dataframe.DataFrame`, which overrides collect.
        frame_class = type(self.spark.range(1))
        original_collect = frame_class.collect
        probe = self

        def collect(this: Any) -> Any:
            started = time.perf_counter()
            rows = original_collect(this)
            probe.wall[f"collect:{probe.step}"] += time.perf_counter() - started
            probe.calls[f"collect:{probe.step}"] += len(rows)
            return rows

        frame_class.collect = collect
        self._restore.append(lambda: setattr(frame_class, "collect", original_collect))

    def uninstall(self) -> None:
        for restore in reversed(self._restore):
            restore()
        self._restore.clear()

    def _get(self, path: str) -> Any:
        base = self.spark.sparkContext.uiWebUrl
        with urllib.request.urlopen(f"{base}/api/v1/{path}", timeout=60) as answer:
            return json.load(answer)

    def tasks(self) -> dict[str, dict[str, float]]:
        """Per group: task seconds (core-seconds), CPU seconds, stages, jobs, input records, shuffle MiB."""
        app = self.spark.sparkContext.applicationId
        jobs = self._get(f"applications/{app}/jobs")
        stages = {
            (s["stageId"], s["attemptId"]): s for s in self._get(f"applications/{app}/stages?status=complete")
        }
        group_of: dict[int, str] = {}
        counts: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
        for job in sorted(jobs, key=lambda j: j["jobId"]):
            group = job.get("jobGroup") or "setup"
            counts[group]["jobs"] += 1
            for stage in job["stageIds"]:
                group_of.setdefault(stage, group)
        spans: dict[str, list[tuple[float, float]]] = defaultdict(list)
        for (stage_id, _), stage in stages.items():
            group = group_of.get(stage_id, "setup")
            figures = counts[group]
            if stage.get("submissionTime") and stage.get("completionTime"):
                spans[group].append((_epoch(stage["submissionTime"]), _epoch(stage["completionTime"])))
            figures["task_s"] += stage["executorRunTime"] / 1000
            figures["cpu_s"] += stage["executorCpuTime"] / 1e9
            figures["stages"] += 1
            figures["tasks"] += stage["numTasks"]
            figures["input_records"] += stage.get("inputRecords", 0)
            figures["shuffle_write_mb"] += stage.get("shuffleWriteBytes", 0) / 2**20
        for group, intervals in spans.items():
            counts[group]["stage_s"] = _covered(intervals)
        return {group: dict(values) for group, values in counts.items()}


def _epoch(stamp: str) -> float:
    """Spark's status API time (`2026-12-02T16:05:01.234GMT`) in seconds since the epoch."""
    from datetime import UTC, datetime

    parsed = datetime.strptime(stamp.removesuffix("GMT"), "%Y-%m-%dT%H:%M:%S.%f")
    return parsed.replace(tzinfo=UTC).timestamp()


def _covered(intervals: list[tuple[float, float]]) -> float:
    """Seconds during which at least one of the intervals was open (their union's length).

    A part's wall time less this is time with no stage running at all: the driver's own
    work and job scheduling, which more cores do not shorten; the rest of the gap between
    wall time and task time over the cores is stages that used fewer cores than there were.
    """
    total, end = 0.0, float("-inf")
    for start, stop in sorted(intervals):
        if stop > end:
            total += stop - max(start, end)
            end = stop
    return total
