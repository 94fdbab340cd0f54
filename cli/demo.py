"""`rapport demo`: the whole loop on a simulated community, with progress bars."""

from __future__ import annotations

import logging
import os
import warnings
from dataclasses import replace
from pathlib import Path
from types import TracebackType

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

from cli.common import fail, get_settings

__all__ = ["demo"]


class RichDemoProgress:
    """`DemoProgress` drawn as one rich progress bar per stage."""

    def __init__(self, console: Console) -> None:
        self._progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
        )
        self._task: TaskID | None = None

    def __enter__(self) -> RichDemoProgress:
        self._progress.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, trace: TracebackType | None
    ) -> None:
        self._finish()
        self._progress.stop()

    def _finish(self) -> None:
        if self._task is not None:
            task = self._progress.tasks[self._task]
            self._progress.update(self._task, total=task.total or 1, completed=task.total or 1)

    def stage(self, name: str, total: int | None = None) -> None:
        """Close the previous bar and open one for `name`."""
        self._finish()
        self._task = self._progress.add_task(name, total=total)

    def advance(self, steps: int = 1) -> None:
        """Advance the current bar."""
        if self._task is not None:
            self._progress.advance(self._task, steps)


def demo(
    ctx: typer.Context,
    users: int = typer.Option(400, min=5, help="Simulated users."),
    days: int = typer.Option(60, min=7, help="Simulated days of history."),
    seed: int = typer.Option(0, help="Seed of the simulation and the models."),
    out: Path = typer.Option(Path("demo-output"), help="Directory for report.html, summary.json and data."),
    verbose: bool = typer.Option(False, "--verbose", help="Show the bot's and models' logs."),
    experiment_users: int | None = typer.Option(
        None,
        min=3,
        help="Simulated users of the message experiment's own audience (default 6000: enough to pick "
        "a 1.5x variant in 95 % of runs; see bench/RESULTS.md).",
    ),
) -> None:
    """Simulate a community against a local Bot API server and run the whole loop; no token needed."""
    settings = get_settings(ctx)
    # TensorFlow's C++ start-up notices (oneDNN's among them, which ignore TF_CPP_MIN_LOG_LEVEL)
    # would tear the progress bars; both must be set before TensorFlow is imported.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    if not verbose:
        os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
    if not verbose:
        # The summary reports what matters; per-message notices would tear the progress bars.
        logging.getLogger().setLevel(logging.ERROR)
        warnings.filterwarnings("ignore", category=DeprecationWarning)
    from demo.report import summary_lines, write_outputs
    from demo.run import DemoConfig, run_demo

    console = Console()
    config = DemoConfig(users=users, days=days, seed=seed, out=out)
    if experiment_users is not None:
        config = replace(config, experiment_users=experiment_users)
    try:
        with RichDemoProgress(console) as progress:
            summary = run_demo(config, settings, progress=progress)
    except (OSError, ValueError, RuntimeError) as exc:
        fail(f"demo failed: {exc}")
    html_path, json_path = write_outputs(summary, out, analytics_report=summary.analytics_report)
    for line in summary_lines(summary):
        console.print(line, highlight=False, markup=False, soft_wrap=True)
    console.print(f"report: {html_path}  summary: {json_path}", highlight=False)
    console.print(
        f"dashboard: rapport dashboard --data {out / 'data'}  (prints a one-time login URL to open)",
        highlight=False,
        markup=False,
        soft_wrap=True,
    )
