"""`rapport dashboard --login-url` and the dashboard served beside the bot in `rapport run`."""

from __future__ import annotations

import socket
from datetime import UTC, datetime
from pathlib import Path

import httpx
from typer.testing import CliRunner

from cli.dashboard import serve_dashboard_beside
from cli.main import app
from store import create_db_engine, load_settings, upgrade
from store.logins import TERMINAL_OPERATOR, dashboard_secret, redeem_login_token


def test_login_url_prints_a_link_the_dashboard_accepts_once(tmp_path: Path) -> None:
    data = tmp_path / "data"
    engine = create_db_engine(f"sqlite:///{data / 'rapport.db'}")
    upgrade(engine)
    result = CliRunner().invoke(app, ["dashboard", "--data", str(data), "--port", "8799", "--login-url"])
    assert result.exit_code == 0, result.output
    url = result.output.strip().splitlines()[-1]
    assert url.startswith("http://127.0.0.1:8799/login?token=")
    secret = dashboard_secret(load_settings(data_dir=data))  # the key kept under the data dir
    token = url.split("token=", 1)[1]
    assert redeem_login_token(engine, secret, token, now=datetime.now(UTC)) == TERMINAL_OPERATOR
    engine.dispose()


def test_a_missing_database_is_one_clear_line(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["dashboard", "--data", str(tmp_path / "nowhere"), "--login-url"])
    assert result.exit_code == 1
    assert "no database at" in result.output


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_rapport_run_serves_the_dashboard_only_when_asked(tmp_path: Path) -> None:
    engine = create_db_engine(f"sqlite:///{tmp_path / 'rapport.db'}")
    upgrade(engine)
    port = _free_port()
    off = serve_dashboard_beside(load_settings(data_dir=tmp_path, dashboard_port=port), engine)
    try:
        httpx.get(f"http://127.0.0.1:{port}/login", timeout=1)
        raise AssertionError("nothing should listen when RAPPORT_DASHBOARD_IN_RUN is off")
    except httpx.ConnectError:
        pass
    off()
    stop = serve_dashboard_beside(
        load_settings(data_dir=tmp_path, dashboard_port=port, dashboard_in_run=True), engine
    )
    try:
        response = httpx.get(f"http://127.0.0.1:{port}/", timeout=5)
        assert response.status_code == 401
    finally:
        stop()
    engine.dispose()
