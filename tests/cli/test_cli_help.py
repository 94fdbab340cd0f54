"""Every help screen shows flags as flags: no `<bool>` value type after a switch."""

from __future__ import annotations

from typing import Any

import pytest
from typer.testing import CliRunner

from cli.main import COMMANDS, app


def _paths() -> list[list[str]]:
    paths: list[list[str]] = [[]]
    for name, lazy in COMMANDS.items():
        command: Any = lazy.load(name)
        paths.append([name])
        paths.extend([name, sub] for sub in getattr(command, "commands", {}))
    return paths


@pytest.mark.parametrize("path", _paths(), ids=lambda path: " ".join(path) or "rapport")
def test_help_shows_no_value_type_for_flags(path: list[str]) -> None:
    result = CliRunner().invoke(app, [*path, "--help"], env={"COLUMNS": "120"})
    assert result.exit_code == 0, result.output
    assert "<bool>" not in result.output
    assert "--help" in result.output


def test_a_bad_setting_is_named_by_its_environment_variable_and_value() -> None:
    result = CliRunner().invoke(app, ["stats"], env={"RAPPORT_FLOOD_WINDOW_S": "soon"})
    assert result.exit_code == 1
    assert "invalid setting RAPPORT_FLOOD_WINDOW_S='soon': Input should be a valid number" in result.output
    assert "flood_window_s" not in result.output
