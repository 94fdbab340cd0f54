"""The root `rapport` Typer app: global options and the command groups."""

from __future__ import annotations

import typer

from cli.admin import campaigns, insights, segments, stats
from cli.analytics import app as analytics_app
from cli.broadcast import app as broadcast_app
from cli.common import configure_logging, get_settings
from cli.data import db_app, events_app, users_app
from cli.demo import demo
from cli.followup import app as followup_app
from cli.jobs import app as jobs_app
from cli.nlu import app as nlu_app
from cli.run import run

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
app.command("demo")(demo)
app.add_typer(nlu_app, name="nlu")
app.add_typer(analytics_app, name="analytics")
app.add_typer(jobs_app, name="jobs")
app.add_typer(broadcast_app, name="broadcast")
app.add_typer(followup_app, name="followup")
app.command("run")(run)
for _command in (stats, segments, insights, campaigns):
    app.command()(_command)


@app.callback()
def root(ctx: typer.Context) -> None:
    """Build the settings once and configure logging for this process."""
    settings = get_settings()
    configure_logging(settings.log_level, secrets=[settings.telegram_bot_token])
    ctx.obj = settings


def main() -> None:
    """Console-script entry point."""
    app()
