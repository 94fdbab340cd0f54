"""The root `rapport` Typer app: global options and the command groups, each imported when it runs.

The commands pull in scikit-learn, SciPy, pandas, matplotlib, TensorFlow and python-telegram-bot;
importing them all took 6-15 s before `rapport --help` could print a line. The root app therefore
knows each command by name, module and one-line help only (:data:`COMMANDS`), and imports a
command's module when that command is invoked (``bench/bench_cli.py`` times it).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import typer
from typer.core import TyperCommand, TyperGroup

from cli import help as help_screen
from cli.common import configure_logging, get_settings

if TYPE_CHECKING:  # Typer ships its own copy of Click; these are its types
    from typer._click.core import Command, Context

help_screen.install()


@dataclass(frozen=True)
class LazyCommand:
    """A command of the root app: where it lives (``module:attribute``) and its one-line help.

    The attribute is a Typer app (a command group) or a command function. ``help`` is what
    `rapport --help` lists without importing the module; a test checks it against the command's
    own help.
    """

    target: str
    help: str

    def load(self, name: str) -> Command:
        """Import the module and build the Click command called ``name``.

        It is built as a subcommand of a throw-away parent, as ``add_typer``/``command`` on the root
        app would build it: a Typer app with a single command stays a group (`rapport users forget`).
        """
        module_name, attribute = self.target.split(":")
        obj = getattr(importlib.import_module(module_name), attribute)
        parent = typer.Typer()
        if isinstance(obj, typer.Typer):
            parent.add_typer(obj, name=name)
        else:
            parent.command(name)(obj)
        group = typer.main.get_group(parent)
        return group.commands[name]


COMMANDS: dict[str, LazyCommand] = {
    "demo": LazyCommand(
        "cli.demo:demo",
        "Simulate a community against a local Bot API server and run the whole loop; no token needed.",
    ),
    "run": LazyCommand(
        "cli.run:run",
        "Start the bot (long polling, or a webhook verified by its secret token) and the scheduler.",
    ),
    "dashboard": LazyCommand(
        "cli.dashboard:dashboard",
        "Serve the managers' dashboard against the database (prints a one-time login URL first).",
    ),
    "stats": LazyCommand(
        "cli.admin:stats", "Activity: DAU/WAU/MAU, new users, questions, top intents and the fallback rate."
    ),
    "segments": LazyCommand(
        "cli.admin:segments", "Current user segments with sizes and one-line descriptions."
    ),
    "insights": LazyCommand("cli.admin:insights", "The strongest behaviour rules in plain words."),
    "campaigns": LazyCommand(
        "cli.admin:campaigns",
        "Status and delivery report of recent campaigns (ambiguous deliveries on their own line).",
    ),
    "db": LazyCommand("cli.data:db_app", "Database schema."),
    "events": LazyCommand("cli.data:events_app", "Import and export the interaction log."),
    "users": LazyCommand("cli.data:users_app", "Users and their data."),
    "accounts": LazyCommand("cli.accounts:app", "Product accounts linked to Telegram users."),
    "nlu": LazyCommand("cli.nlu:app", "Rasa-compatible NLU: intents, entities and out-of-scope detection."),
    "analytics": LazyCommand("cli.analytics:app", "Segments, association rules and the analytics report."),
    "jobs": LazyCommand("cli.jobs:app", "The scheduler's jobs: list them, run one now."),
    "broadcast": LazyCommand(
        "cli.broadcast:app",
        "Segment broadcasts (or experiments with --variant): create, list, report, pause, resume, cancel.",
    ),
    "experiments": LazyCommand(
        "cli.experiments:app",
        "Message experiments: list them, report one (per variant: sends, conversions, intervals, lift).",
    ),
    "followup": LazyCommand(
        "cli.followup:app", "The follow-up model: train it from the event log, compare it with baselines."
    ),
}


class LazyGroup(TyperGroup):
    """The root group: lists :data:`COMMANDS` from their help lines, imports one only to run it."""

    def list_commands(self, ctx: Context) -> list[str]:
        """Loaded commands first, then the lazy ones in :data:`COMMANDS` order."""
        loaded = super().list_commands(ctx)
        return [*loaded, *(name for name in COMMANDS if name not in loaded)]

    def get_command(self, ctx: Context, cmd_name: str) -> Command | None:
        """The loaded command, or a stand-in carrying the lazy command's help (for the listing)."""
        command = super().get_command(ctx, cmd_name)
        if command is not None or cmd_name not in COMMANDS:
            return command
        return TyperCommand(cmd_name, help=COMMANDS[cmd_name].help)

    def resolve_command(self, ctx: Context, args: list[str]) -> tuple[str | None, Command | None, list[str]]:
        """Import the invoked command before Click looks it up."""
        if args and args[0] in COMMANDS and args[0] not in self.commands:
            self.add_command(COMMANDS[args[0]].load(args[0]), args[0])
        return super().resolve_command(ctx, args)


def package_version() -> str:
    """Rapport's version from the installed package's metadata."""
    import importlib.metadata  # ~50 ms: only --version needs it

    try:
        return importlib.metadata.version("rapport")
    except importlib.metadata.PackageNotFoundError:
        return "unknown (not installed: run `make install`)"


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"rapport {package_version()}")
        raise typer.Exit()


app = typer.Typer(
    name="rapport",
    help="Rapport: Telegram user operations for AI start-ups.",
    cls=LazyGroup,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


@app.callback()
def root(
    ctx: typer.Context,
    version: bool = typer.Option(
        False, "--version", callback=_print_version, is_eager=True, help="Print Rapport's version and exit."
    ),
) -> None:
    """Build the settings once and configure logging for this process."""
    settings = get_settings()
    configure_logging(settings.log_level, secrets=[settings.telegram_bot_token])
    ctx.obj = settings


def main(args: Any = None) -> None:
    """Console-script entry point (``args``: the arguments, default ``sys.argv[1:]``)."""
    app(args)
