"""`rapport stats|segments|insights|campaigns`: the manager reports in the terminal."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli import app as cli


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["stats", "--days", "30"], "Activity, last 30 days"),
        (["segments"], "No segments yet"),
        (["insights", "--top", "3"], "No insights yet"),
        (["campaigns"], "No campaigns yet"),
    ],
)
def test_reports_on_an_empty_database(tmp_path: Path, args: list[str], expected: str) -> None:
    result = CliRunner().invoke(cli, args, env={"RAPPORT_DATA_DIR": str(tmp_path)})
    assert result.exit_code == 0, result.output
    assert expected in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [(["stats", "--days", "0"], "--days must lie in 1..366"), (["insights", "--top", "0"], "--top must be")],
)
def test_bad_options_fail_in_one_line(tmp_path: Path, args: list[str], message: str) -> None:
    result = CliRunner().invoke(cli, args, env={"RAPPORT_DATA_DIR": str(tmp_path)})
    assert result.exit_code == 1
    assert message in result.output
