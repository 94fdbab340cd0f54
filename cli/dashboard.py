"""`rapport dashboard [--host --port --data --database-url] [--login-url]`: the web dashboard alone."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import typer
import uvicorn
from fastapi import FastAPI
from sqlalchemy import Engine

from cli.common import fail, get_settings, open_engine
from dashboard import config_from_settings, create_app
from ingest import create_router
from store import Settings
from store.logins import TERMINAL_OPERATOR, dashboard_secret, issue_login_token, login_url

logger = logging.getLogger(__name__)
START_TIMEOUT_S = 10.0


def web_app(settings: Settings, engine: Engine) -> FastAPI:
    """The dashboard, with the Segment-spec ingestion API (`/v1/*`) mounted when write keys are set."""
    app = create_app(config_from_settings(settings, engine))
    if settings.write_keys:
        app.include_router(create_router(settings, engine))
    return app


def serve_dashboard_beside(settings: Settings, engine: Engine) -> Callable[[], None]:
    """With RAPPORT_DASHBOARD_IN_RUN, serve the dashboard in a thread of this process; the stopper.

    `rapport run` calls this: the dashboard then shares the bot's database engine, and its
    broadcasts are sent by the scheduler of the same process. Off, it does nothing.
    """
    if not settings.dashboard_in_run:
        return lambda: None
    app = web_app(settings, engine)
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host=settings.dashboard_host,
            port=settings.dashboard_port,
            log_level="warning",
            access_log=False,
        )
    )
    thread = threading.Thread(target=server.run, name="dashboard", daemon=True)
    thread.start()
    deadline = time.monotonic() + START_TIMEOUT_S
    while not server.started and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.02)
    if not server.started:
        fail(f"the dashboard could not listen on {settings.dashboard_host}:{settings.dashboard_port}")
    logger.info("dashboard serving on %s", settings.resolved_dashboard_url)

    def stop() -> None:
        server.should_exit = True
        thread.join(timeout=START_TIMEOUT_S)

    return stop


def dashboard(
    ctx: typer.Context,
    host: str | None = typer.Option(
        None, "--host", help="Interface to bind (default RAPPORT_DASHBOARD_HOST)."
    ),
    port: int | None = typer.Option(None, "--port", help="Port (default RAPPORT_DASHBOARD_PORT)."),
    data: Path | None = typer.Option(None, "--data", help="Data directory whose rapport.db to open."),
    database_url: str | None = typer.Option(None, "--database-url", help="SQLAlchemy URL of the database."),
    print_login_url: bool = typer.Option(
        False,
        "--login-url",
        help="Print a fresh one-time login URL for a dashboard on this database and exit.",
    ),
) -> None:
    """Serve the managers' dashboard against the database (prints a one-time login URL first)."""
    overrides: dict[str, object] = {}
    if host is not None:
        overrides["dashboard_host"] = host
    if port is not None:
        if not 0 < port < 65536:
            fail(f"--port must be 1-65535, got {port}")
        overrides["dashboard_port"] = port
    if data is not None:
        overrides["data_dir"] = data
        overrides["database_url"] = f"sqlite:///{data / 'rapport.db'}"
    if database_url is not None:
        overrides["database_url"] = database_url
    settings = get_settings(ctx).model_copy(update=overrides)
    if data is not None and database_url is None and not (data / "rapport.db").exists():
        fail(f"no database at {data / 'rapport.db'} (run `rapport demo` or give --database-url)")
    engine = open_engine(settings)
    try:
        token = issue_login_token(
            engine, dashboard_secret(settings), user_id=TERMINAL_OPERATOR, now=datetime.now(UTC)
        )
        url = login_url(settings.resolved_dashboard_url, token)
        if print_login_url:
            print(url)
            return
        app = web_app(settings, engine)
        print("Rapport dashboard: open this one-time login link within 10 minutes:", flush=True)
        print(f"    {url}", flush=True)
        print(
            "(another: `rapport dashboard --login-url`; managers can also send /dashboard to the bot)",
            flush=True,
        )
        uvicorn.run(
            app,
            host=settings.dashboard_host,
            port=settings.dashboard_port,
            log_level=settings.log_level.lower(),
            access_log=False,
        )
    finally:
        engine.dispose()
