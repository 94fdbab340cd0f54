"""`rapport analytics`: run segmentation and rules, mine basket files, write the report."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from analytics import (
    AnalyticsConfig,
    AnalyticsError,
    current_run,
    current_segments,
    mine_basket_file,
    pin_segment,
    run_analytics,
    write_report,
)
from cli.common import engine_scope, fail, get_settings

app = typer.Typer(help="Segments, association rules and the analytics report.", no_args_is_help=True)
out = Console()

_STEPS = ("features", "segmentation", "rules", "store")


@app.command("run")
def run(
    ctx: typer.Context,
    algorithm: str = typer.Option("kmeans", help="kmeans (k by silhouette) or dbscan."),
    k_max: int = typer.Option(8, "--k-max", min=2, help="Largest k KMeans tries."),
    min_support: float = typer.Option(0.02, "--min-support", help="Rule minimum support."),
    min_confidence: float = typer.Option(0.5, "--min-confidence", help="Rule minimum confidence."),
    min_lift: float = typer.Option(1.2, "--min-lift", help="Rule minimum lift."),
    outcomes_only: bool = typer.Option(False, "--outcomes-only", help="Keep rules ending in an outcome."),
    seed: int = typer.Option(0, "--seed", help="random_state, so a run is reproducible."),
    as_of: str | None = typer.Option(None, "--as-of", help="ISO UTC time recency is measured from."),
    engine_name: str | None = typer.Option(
        None, "--engine", help="local or spark (default: RAPPORT_ANALYTICS_ENGINE)."
    ),
    parquet: Path | None = typer.Option(
        None, "--events-parquet", help="Spark only: read events from this Parquet export."
    ),
) -> None:
    """Compute features, segment users and mine rules; store the run as current."""
    if engine_name not in (None, "local", "spark"):
        fail(f"--engine {engine_name!r} is not local or spark")
    if algorithm not in ("kmeans", "dbscan"):
        fail(f"--algorithm {algorithm!r} is not kmeans or dbscan")
    moment = None
    if as_of is not None:
        try:
            moment = datetime.fromisoformat(as_of)
        except ValueError:
            fail(f"--as-of {as_of!r} is not an ISO date or datetime")
        moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment
    settings = get_settings(ctx)
    config = AnalyticsConfig(
        algorithm=algorithm,
        k_max=k_max,
        min_support=min_support,
        min_confidence=min_confidence,
        min_lift=min_lift,
        outcome_rules_only=outcomes_only,
        random_state=seed,
        exclude_users=tuple(settings.admin_ids),
    )
    with engine_scope(settings) as engine:
        progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            TimeElapsedColumn(),
            console=Console(stderr=True),
        )
        with progress:
            task = progress.add_task("analytics", total=len(_STEPS))

            def advance(step: str) -> None:
                progress.update(task, description=step, completed=_STEPS.index(step))

            try:
                if (engine_name or settings.analytics_engine) == "spark":
                    from analytics.spark.jobs import run_spark_job
                    from analytics.spark.session import SparkSettings

                    spark = SparkSettings.from_settings(settings)
                    summary = run_spark_job(
                        engine, spark, parquet=parquet, config=config, as_of=moment, progress=advance
                    )
                else:
                    summary = run_analytics(engine, config=config, as_of=moment, progress=advance)
            except (AnalyticsError, ValueError) as exc:
                fail(f"analytics run failed: {exc}")
            progress.update(task, completed=len(_STEPS))
    out.print(f"run {summary.run_id}: {summary.status}: {summary.message}")
    if summary.status != "done":
        raise typer.Exit(2)


@app.command("rules")
def rules(
    baskets: Path = typer.Option(..., "--baskets", help="One basket per line, items comma-separated."),
    min_support: float = typer.Option(0.01, "--min-support"),
    min_confidence: float = typer.Option(0.5, "--min-confidence"),
    min_lift: float = typer.Option(1.0, "--min-lift"),
    algorithm: str = typer.Option("fpgrowth", "--algorithm", help="fpgrowth or apriori."),
    limit: int = typer.Option(20, "--limit", help="Rules shown (all with --json)."),
    as_json: bool = typer.Option(False, "--json", help="Print every rule as JSON."),
    engine_name: str = typer.Option("local", "--engine", help="local (mlxtend) or spark (MLlib FPGrowth)."),
) -> None:
    """Mine association rules from any basket file (no database needed)."""
    options = {
        "min_support": min_support,
        "min_confidence": min_confidence,
        "min_lift": min_lift,
        "algorithm": algorithm,
    }
    if engine_name not in ("local", "spark"):
        fail(f"--engine {engine_name!r} is not local or spark")
    try:
        if engine_name == "spark":
            from analytics.spark.jobs import mine_basket_file_spark
            from analytics.spark.session import SparkSettings

            found = mine_basket_file_spark(baskets, SparkSettings.from_settings(get_settings()), **options)
        else:
            found = mine_basket_file(baskets, **options)
    except AnalyticsError as exc:
        fail(str(exc))
    if as_json:
        typer.echo(json.dumps([rule.as_dict() for rule in found], indent=2, ensure_ascii=False))
        return
    if not found:
        out.print(f"no rules at support {min_support}, confidence {min_confidence}, lift {min_lift}")
        return
    table = Table("antecedents", "consequents", "support", "confidence", "lift", title=f"{len(found)} rules")
    for rule in found[:limit]:
        table.add_row(
            ", ".join(rule.antecedents),
            ", ".join(rule.consequents),
            f"{rule.support:.4f}",
            f"{rule.confidence:.3f}",
            f"{rule.lift:.2f}",
        )
    out.print(table)


@app.command("segments")
def segments(ctx: typer.Context) -> None:
    """List the current run's segments."""
    settings = get_settings(ctx)
    with engine_scope(settings) as engine:
        run_info = current_run(engine)
        found = current_segments(engine)
    if run_info is None:
        fail("no analytics run yet: run `rapport analytics run` first")
    table = Table("id", "name", "size", "pinned", "description", title=f"run {run_info.id}")
    for segment in found:
        table.add_row(
            str(segment.id),
            segment.name,
            str(segment.size),
            "yes" if segment.pinned else "",
            segment.description,
        )
    out.print(table)


@app.command("pin")
def pin(
    ctx: typer.Context,
    segment_id: int = typer.Argument(..., help="Segment id (see `rapport analytics segments`)."),
    name: str = typer.Argument(..., help="The name to keep across runs."),
) -> None:
    """Name a segment and keep the name for the matching segment of later runs."""
    settings = get_settings(ctx)
    with engine_scope(settings) as engine:
        try:
            segment = pin_segment(engine, segment_id, name)
        except AnalyticsError as exc:
            fail(str(exc))
    out.print(f"segment {segment.id} is now pinned as {segment.name!r}")


@app.command("report")
def report(
    ctx: typer.Context,
    out_dir: Path = typer.Option(..., "--out", help="Directory for report.html, report.json and CSVs."),
) -> None:
    """Write the self-contained HTML report plus the same numbers as JSON and CSV."""
    settings = get_settings(ctx)
    with engine_scope(settings) as engine:
        try:
            written = write_report(engine, out_dir)
        except (AnalyticsError, OSError) as exc:
            fail(f"report not written: {exc}")
    out.print(f"report written to {written}")
