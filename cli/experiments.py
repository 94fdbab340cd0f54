"""`rapport experiments list|report ID [--json]`: broadcast experiments, follow-up variants, the bandit."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import typer
from rich.console import Console

from cli.common import engine_scope, fail, get_settings
from scheduler import SchedulerError, experiment_report, followup_report, recent_experiment_reports
from scheduler.experiment_reports import (
    FOLLOWUP_BANDIT,
    FOLLOWUP_PREFIX,
    ExperimentReport,
    followup_variant_report,
)

app = typer.Typer(
    help="Message experiments: list them, report one (per variant: sends, conversions, intervals, lift).",
    no_args_is_help=True,
)
out = Console(highlight=False, soft_wrap=True)


def _show(reports: list[ExperimentReport], *, as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps([r.as_dict() for r in reports], indent=2, ensure_ascii=False))
        return
    for report in reports:
        out.print(*report.lines(), sep="\n")
        out.print()


@app.command("list")
def list_experiments(
    ctx: typer.Context,
    last: int = typer.Option(10, "--last", "-n", help="How many recent broadcast experiments."),
    as_json: bool = typer.Option(False, "--json", help="Print the reports as JSON."),
) -> None:
    """Recent broadcast experiments with their figures, then the follow-up bandit (`report followups`)."""
    if last < 1:
        fail(f"--last must be at least 1, got {last}")
    with engine_scope(get_settings(ctx)) as engine:
        reports = recent_experiment_reports(engine, limit=last)
        bandit = followup_report(engine, now=datetime.now(UTC))
    if not reports and not as_json:
        out.print("No broadcast experiments yet.\n")
    _show([*reports, bandit], as_json=as_json)


@app.command("report")
def report(
    ctx: typer.Context,
    experiment_id: str = typer.Argument(
        ...,
        help=f"Experiment id, `{FOLLOWUP_BANDIT}` for the bandit, or `{FOLLOWUP_PREFIX}<message id>` for the "
        "variants of one follow-up message.",
    ),
    days: int | None = typer.Option(None, "--days", help="Follow-up bandit only: the last N days."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
) -> None:
    """One experiment: per arm sends, conversions, rate (95% Wilson), lift vs control, chi-squared."""
    if days is not None and days < 1:
        fail(f"--days must be at least 1, got {days}")
    with engine_scope(get_settings(ctx)) as engine:
        if experiment_id == FOLLOWUP_BANDIT:
            result = followup_report(engine, now=datetime.now(UTC), days=days)
        elif experiment_id.startswith(FOLLOWUP_PREFIX):
            try:
                result = followup_variant_report(engine, experiment_id.removeprefix(FOLLOWUP_PREFIX))
            except SchedulerError as exc:
                fail(str(exc))
        elif not experiment_id.isdigit():
            fail(
                f"experiment id {experiment_id!r}: expected a number, {FOLLOWUP_BANDIT!r} or "
                f"{FOLLOWUP_PREFIX}<message id>"
            )
        else:
            try:
                result = experiment_report(engine, int(experiment_id))
            except SchedulerError as exc:
                fail(str(exc))
    if as_json:
        typer.echo(json.dumps(result.as_dict(), indent=2, ensure_ascii=False))
        return
    out.print(*result.lines(), sep="\n")
