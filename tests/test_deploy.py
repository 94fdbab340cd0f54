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


REPLICAS_COMPOSE = ROOT / "deploy" / "docker-compose.replicas.yml"


def test_the_analytics_image_copies_every_package_too() -> None:
    dockerfile = (ROOT / "deploy" / "analytics.Dockerfile").read_text(encoding="utf-8")
    assert set(re.findall(r"^COPY (\w+) \./\1$", dockerfile, flags=re.MULTILINE)) == _packages()
    assert "openjdk-17-jre-headless" in dockerfile
    assert re.search(r"^USER (?!root)\w+", dockerfile, flags=re.MULTILINE)


def test_replicas_compose_puts_every_replica_behind_nginx_on_one_database() -> None:
    compose = yaml.safe_load(REPLICAS_COMPOSE.read_text(encoding="utf-8"))
    services = compose["services"]
    replicas = {name: s for name, s in services.items() if name.startswith("rapport-")}
    assert len(replicas) >= 2
    urls = {s["environment"]["RAPPORT_DATABASE_URL"] for s in replicas.values()}
    assert len(urls) == 1 and urls.pop().startswith("postgresql+psycopg://")
    volumes = [s["volumes"][0].split(":")[0] for s in replicas.values()]
    assert len(set(volumes)) == len(volumes)  # a spool of its own each
    assert set(volumes) <= set(compose["volumes"])
    ports = set()
    for service in replicas.values():
        command = service["command"]
        assert command[:2] == ["run", "--webhook"]
        assert command[2].startswith("https://")
        ports.add(command[command.index("--port") + 1])
        assert service["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert services["migrate"]["command"] == ["db", "upgrade"]
    nginx = (ROOT / "deploy" / "nginx.conf").read_text(encoding="utf-8")
    upstreams = set(re.findall(r"^\s*server (rapport-\d+):(\d+)", nginx, flags=re.MULTILINE))
    assert upstreams == {(name, port) for name in replicas for port in ports}
    assert "non_idempotent" in nginx
    mounted = [v for v in services["nginx"]["volumes"] if v.startswith("./nginx.conf:")]
    assert mounted


def test_replicas_compose_runs_the_nightly_job_on_the_spark_cluster() -> None:
    services = yaml.safe_load(REPLICAS_COMPOSE.read_text(encoding="utf-8"))["services"]
    job = services["analytics"]
    assert job["command"][:2] == ["analytics", "run"]
    assert job["environment"]["RAPPORT_SPARK_MASTER"] == "spark://spark-master:7077"
    assert job["build"]["dockerfile"] == "deploy/analytics.Dockerfile"
    assert (ROOT / job["build"]["dockerfile"]).is_file()
    for name in ("analytics", "spark-master", "spark-worker"):
        assert services[name]["profiles"] == ["analytics"]  # not started by a plain `up`


@pytest.mark.skipif(shutil.which("docker-compose") is None, reason="docker-compose is not installed")
def test_replicas_compose_file_passes_docker_compose_config(tmp_path: Path) -> None:
    # A copy beside an empty .env: the file names ../.env, which a checkout does not have.
    shutil.copytree(ROOT / "deploy", tmp_path / "deploy")
    (tmp_path / ".env").write_text("", encoding="utf-8")
    result = subprocess.run(
        ["docker-compose", "-f", str(tmp_path / "deploy" / REPLICAS_COMPOSE.name), "config", "-q"],
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
