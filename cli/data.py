"""`rapport db`, `rapport events` and `rapport users`: schema, import/export, privacy."""

from __future__ import annotations

import sys
from pathlib import Path

import typer
from rich.console import Console
from sqlalchemy.exc import SQLAlchemyError

from cli.accounts import users_import
from cli.common import engine_scope, fail, get_settings
from store import ImportFileError, export_events, forget_stored_user, import_events
from store.migrate import current_revision, head_revision

db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
events_app = typer.Typer(help="Import and export the interaction log.", no_args_is_help=True)
users_app = typer.Typer(help="Users and their data.", no_args_is_help=True)
out = Console()


@db_app.command("upgrade")
def db_upgrade(ctx: typer.Context) -> None:
    """Create or migrate the schema to the newest revision."""
    settings = get_settings(ctx)
    with engine_scope(settings) as engine:
        out.print(f"database at revision {current_revision(engine)} (head {head_revision(engine)})")


@db_app.command("status")
def db_status(ctx: typer.Context) -> None:
    """Show the schema revision without changing anything."""
    settings = get_settings(ctx)
    with engine_scope(settings, migrate=False) as engine:
        out.print(f"current {current_revision(engine)}, head {head_revision(engine)}")


@events_app.command("import")
def events_import(
    ctx: typer.Context,
    path: Path = typer.Argument(..., help="CSV or JSONL file: user_id, timestamp, kind, intent, ..."),
    skip_invalid: bool = typer.Option(False, "--skip-invalid", help="Import good rows, report bad."),
    allow_duplicate: bool = typer.Option(False, "--allow-duplicate", help="Import a file again."),
) -> None:
    """Import events; a file with bad rows is rejected whole unless --skip-invalid."""
    settings = get_settings(ctx)
    with engine_scope(settings) as engine:
        try:
            report = import_events(
                engine,
                path,
                skip_invalid=skip_invalid,
                store_text=settings.store_text,
                allow_duplicate=allow_duplicate,
            )
        except ImportFileError as exc:
            # Plain echo and a markup-free `fail`: file names and reasons quote the file's own
            # text, which may contain anything, "[/x]" included.
            for row in exc.bad_rows:
                typer.echo(f"{path}:{row.line}: {row.reason}", err=True)
            fail(f"nothing imported: {exc}")
        except SQLAlchemyError as exc:
            fail(f"nothing imported: database error: {str(exc).strip().splitlines()[0][:200]}")
    out.print(f"imported {report.imported} events from {path}", markup=False, soft_wrap=True)
    if report.pending:
        out.print(
            f"{report.pending} product events of accounts not linked yet are kept until they are linked",
            markup=False,
            soft_wrap=True,
        )
    for row in report.skipped:
        typer.echo(f"skipped {path}:{row.line}: {row.reason}", err=True)


@events_app.command("export")
def events_export(
    ctx: typer.Context,
    fmt: str = typer.Option("jsonl", "--format", help="jsonl, csv or parquet (a folder, one part per day)"),
    output: Path | None = typer.Option(None, "--out", "-o", help="File (default: stdout)."),
) -> None:
    """Export every event in the import format, or as Parquet partitioned by day for Spark."""
    if fmt not in ("jsonl", "csv", "parquet"):
        fail(f"unknown format {fmt!r}: use jsonl, csv or parquet")
    settings = get_settings(ctx)
    if fmt == "parquet":
        if output is None:
            fail("--format parquet writes a folder: give it with --out")
        from analytics.errors import AnalyticsError
        from analytics.spark.jobs import export_parquet
        from analytics.spark.session import SparkSettings

        with engine_scope(settings) as engine:
            try:
                count = export_parquet(engine, SparkSettings.from_settings(settings), output)
            except AnalyticsError as exc:
                fail(str(exc))
        typer.echo(f"exported {count} events", err=True)
        return
    with engine_scope(settings) as engine:
        if output is None:
            count = export_events(engine, sys.stdout, fmt=fmt)
        else:
            with output.open("w", encoding="utf-8", newline="") as handle:
                count = export_events(engine, handle, fmt=fmt)
    typer.echo(f"exported {count} events", err=True)


@users_app.command("forget")
def users_forget(ctx: typer.Context, user_id: int = typer.Argument(..., help="Telegram user id.")) -> None:
    """Delete everything stored about one user, and their id wherever other rows mention it.

    A bot running meanwhile may still hold the user's last events in its buffer (tens of
    milliseconds' worth, see README "Storage"); the bot's own /forget flushes it first.
    """
    settings = get_settings(ctx)
    with engine_scope(settings) as engine:
        report = forget_stored_user(engine, user_id, spool_dir=settings.data_dir / "spool")
    if report.total == 0:
        out.print(f"nothing stored about user {user_id}")
        return
    details = ", ".join(f"{count} {table}" for table, count in report.deleted.items() if count)
    scrubbed = ", ".join(f"{count} {place}" for place, count in report.scrubbed.items() if count)
    summary = f"forgot user {user_id}: deleted {details or 'nothing'}"
    out.print(summary + (f"; removed their id from {scrubbed}" if scrubbed else ""), soft_wrap=True)


users_app.command("import")(users_import)
