"""`.env.example` is generated from the settings object and lists every setting with its default."""

from __future__ import annotations

from pathlib import Path

import pytest

from store.envfile import env_name, render_env_example
from store.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


def test_committed_env_example_is_what_the_settings_render() -> None:
    committed = (ROOT / ".env.example").read_text(encoding="utf-8")
    assert committed == render_env_example(), "run `python -m store.envfile > .env.example`"


def _assignments() -> dict[str, str]:
    assignments = {}
    for line in render_env_example().splitlines():
        if line.startswith("# ") and "=" in line and line[2:].split("=", 1)[0].isupper():
            name, _, value = line[2:].partition("=")
            assignments[name] = value
    return assignments


def test_every_setting_has_a_line() -> None:
    expected = {env_name(name, field) for name, field in Settings.model_fields.items()}
    assert set(_assignments()) == expected


@pytest.mark.parametrize("name", sorted(Settings.model_fields))
def test_each_shown_default_reads_back_as_the_default(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    field = Settings.model_fields[name]
    default = field.default_factory() if field.default_factory is not None else field.default  # type: ignore[call-arg]
    shown = _assignments()[env_name(name, field)]
    if not shown:
        assert default in (None, [], {})
        return
    monkeypatch.setenv(env_name(name, field), shown)
    assert getattr(Settings(_env_file=None), name) == default
