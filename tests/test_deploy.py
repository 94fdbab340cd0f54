"""The operator's deployment files stay in step with the code: the image carries every package, the
compose file is valid and wires the bot to PostgreSQL, the systemd unit runs the same command."""

from __future__ import annotations

import re
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]


def _packages() -> set[str]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    include = config["tool"]["setuptools"]["packages"]["find"]["include"]
    return {pattern.rstrip("*") for pattern in include}


def test_the_image_copies_every_package_and_installs_the_runtime_lock_only() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    copied = set(re.findall(r"^COPY (\w+) \./\1$", dockerfile, flags=re.MULTILINE))
    assert copied == _packages()
    assert "pip install --no-cache-dir -r requirements.lock" in dockerfile
    assert "requirements-dev.lock" not in dockerfile
    assert re.search(r"^USER (?!root)\w+", dockerfile, flags=re.MULTILINE)


def test_compose_runs_the_bot_on_postgres_with_healthchecks() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
    services = compose["services"]
    assert set(services) == {"postgres", "rapport"}
    bot = services["rapport"]
    assert bot["environment"]["RAPPORT_DATABASE_URL"].startswith("postgresql+psycopg://")
    assert bot["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert bot["command"] == ["run"]
    for service in services.values():
        assert service["healthcheck"]["test"]
    assert set(compose["volumes"]) == {"postgres-data", "rapport-data"}


@pytest.mark.skipif(shutil.which("docker-compose") is None, reason="docker-compose is not installed")
def test_compose_file_passes_docker_compose_config(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("", encoding="utf-8")
    compose = ["docker-compose", "--project-directory", str(tmp_path), "-f", str(ROOT / "docker-compose.yml")]
    result = subprocess.run(
        [*compose, "config", "-q"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def test_systemd_unit_runs_rapport_and_stops_with_sigterm() -> None:
    unit = (ROOT / "deploy" / "rapport.service").read_text(encoding="utf-8")
    assert re.search(r"^ExecStart=\S+/rapport run$", unit, flags=re.MULTILINE)
    assert "KillSignal=SIGTERM" in unit
    assert "EnvironmentFile=" in unit
