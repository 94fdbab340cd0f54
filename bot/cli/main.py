"""The root `rapport` Typer app: global options and the command groups."""

from __future__ import annotations

import typer

from bot.cli.common import configure_logging, get_settings
from bot.cli.data import db_app, events_app, users_app

app = typer.Typer(
    name="rapport",
    help="Rapport: Telegram user operations for AI start-ups.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(db_app, name="db")
app.add_typer(events_app, name="events")
app.add_typer(users_app, name="users")


@app.callback()
def root(ctx: typer.Context) -> None:
    """Build the settings once and configure logging for this process."""
    settings = get_settings()
    configure_logging(settings.log_level)
    ctx.obj = settings


def main() -> None:
    """Console-script entry point."""
    app()
