"""`rapport accounts` (deep links, link imports) and `rapport users import` (traits)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import typer
from rich.console import Console

from cli.common import engine_scope, fail, get_settings
from store import ImportFileError
from store.links import LinkError, link_url
from store.product_import import import_links, import_traits

app = typer.Typer(help="Product accounts linked to Telegram users.", no_args_is_help=True)
out = Console()


@app.command("link-url")
def accounts_link_url(
    ctx: typer.Context,
    account_id: str = typer.Argument(
        ..., help="The product's account id (at most 32 UTF-8 bytes, or a UUID)."
    ),
    bot_username: str | None = typer.Option(
        None, "--bot-username", help="The bot's username (default: RAPPORT_BOT_USERNAME)."
    ),
    ttl_days: float | None = typer.Option(
        None, "--ttl-days", help="Days the link stays valid (default: RAPPORT_LINK_TTL_DAYS)."
    ),
) -> None:
    """Print a signed, expiring https://t.me/<bot>?start=<payload> link for one account."""
    settings = get_settings(ctx)
    name = bot_username or settings.bot_username
    if not name:
        fail("no bot username: pass --bot-username or set RAPPORT_BOT_USERNAME")
    days = settings.link_ttl_days if ttl_days is None else ttl_days
    try:
        url = link_url(account_id, settings.link_secret or "", bot_username=name, ttl=timedelta(days=days))
    except LinkError as exc:
        fail(str(exc))
    typer.echo(url)


def _report_bad_file(path: Path, exc: ImportFileError) -> None:
    for row in exc.bad_rows:
        typer.echo(f"{path}:{row.line}: {row.reason}", err=True)
    fail(f"nothing imported: {exc}")


@app.command("import")
def accounts_import(
    ctx: typer.Context,
    path: Path = typer.Argument(..., help="CSV or JSONL file: account_id, telegram_id."),
) -> None:
    """Import account links; a file with a bad or conflicting row is rejected whole."""
    settings = get_settings(ctx)
    with engine_scope(settings) as engine:
        try:
            report = import_links(engine, path)
        except ImportFileError as exc:
            _report_bad_file(path, exc)
    out.print(
        f"linked {report.imported} accounts from {path} ({report.unchanged} already linked, "
        f"{report.attached} waiting product events attached)"
    )


def users_import(
    ctx: typer.Context,
    path: Path = typer.Argument(
        ..., help="CSV or JSONL file: account_id, name, value, optional type and updated_at."
    ),
) -> None:
    """Import typed traits of product accounts; a file with a bad row is rejected whole."""
    settings = get_settings(ctx)
    with engine_scope(settings) as engine:
        try:
            report = import_traits(engine, path)
        except ImportFileError as exc:
            _report_bad_file(path, exc)
    out.print(f"imported {report.imported} traits from {path} ({report.unchanged} older than stored)")
