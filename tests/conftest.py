"""Shared fixtures: isolated environment and one engine fixture over SQLite and PostgreSQL."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text

from store import create_db_engine, upgrade

POSTGRES_ADMIN_URL = os.environ.get(
    "RAPPORT_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
# Copies of the public data sets (with their attribution notes) live beside the tests.
SHARED_DATA = Path(__file__).resolve().parent / "data"


@pytest.fixture(autouse=True)
def clean_environ(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    """No test sees the developer's RAPPORT_* or TELEGRAM_* variables or their .env."""
    for name in list(os.environ):
        if name.startswith(("RAPPORT_", "TELEGRAM_")) and name != "RAPPORT_TEST_POSTGRES_URL":
            monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path_factory.mktemp("cwd"))


def _postgres_available() -> str | None:
    try:
        engine = create_engine(POSTGRES_ADMIN_URL, connect_args={"connect_timeout": 3})
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        engine.dispose()
    except Exception as exc:  # any failure means: not reachable
        return str(exc).splitlines()[0]
    return None


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL schema per session; in CI an unreachable server is a failure."""
    problem = _postgres_available()
    if problem is not None:
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL must run in CI: {problem}")
        pytest.skip(f"PostgreSQL not reachable: {problem}")
    yield POSTGRES_ADMIN_URL


def _fresh_postgres_schema(url: str) -> tuple[str, str]:
    """Create an empty schema and return a URL whose search_path points at it."""
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(url)
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    admin.dispose()
    return schema, f"{url}?options=-csearch_path%3D{schema}"


def _drop_postgres_schema(url: str, schema: str) -> None:
    admin = create_engine(url)
    with admin.begin() as connection:
        connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database URL with an empty, migrated schema: SQLite file or PostgreSQL schema."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'rapport.db'}"
        engine = create_db_engine(url)
        upgrade(engine)
        engine.dispose()
        yield url
        return
    admin_url = request.getfixturevalue("postgres_url")
    schema, url = _fresh_postgres_schema(admin_url)
    engine = create_db_engine(url)
    upgrade(engine)
    engine.dispose()
    try:
        yield url
    finally:
        _drop_postgres_schema(admin_url, schema)


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    """A migrated engine on SQLite and on PostgreSQL (the same tests run on both)."""
    engine = create_db_engine(db_url)
    yield engine
    engine.dispose()


@pytest.fixture
def sqlite_engine(tmp_path: Path) -> Iterator[Engine]:
    """A migrated SQLite engine, for tests that are about logic rather than the backend."""
    engine = create_db_engine(f"sqlite:///{tmp_path / 'rapport.db'}")
    upgrade(engine)
    yield engine
    engine.dispose()
