"""Settings: read from the environment, and every one documented in the README."""

from __future__ import annotations

from pathlib import Path

import pytest

from store.settings import Settings, load_settings

README = Path(__file__).resolve().parents[2] / "README.md"


def _env_name(name: str) -> str:
    field = Settings.model_fields[name]
    alias = field.validation_alias
    return alias.choices[0] if alias is not None else f"RAPPORT_{name.upper()}"  # type: ignore[union-attr]


@pytest.mark.parametrize("name", sorted(Settings.model_fields))
def test_every_setting_is_documented_in_the_readme(name: str) -> None:
    assert f"`{_env_name(name)}`" in README.read_text(encoding="utf-8")


def test_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", "123:abc")
    monkeypatch.setenv("RAPPORT_ADMIN_IDS", "1, 2,3")
    monkeypatch.setenv("RAPPORT_STORE_TEXT", "true")
    monkeypatch.setenv("RAPPORT_DATA_DIR", "/tmp/x")
    settings = load_settings()
    assert settings.telegram_bot_token == "123:abc"
    assert settings.admin_ids == [1, 2, 3]
    assert settings.store_text is True
    assert settings.resolved_database_url == "sqlite:////tmp/x/rapport.db"


def test_dotenv_file_is_read(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text(
        "RAPPORT_DATABASE_URL=postgresql+psycopg://u@h/db\nRAPPORT_ADMIN_IDS=[5]\n"
    )
    settings = load_settings()
    assert settings.resolved_database_url == "postgresql+psycopg://u@h/db"
    assert settings.admin_ids == [5]
