"""The root CLI: `rapport --help` and `--version` without the heavy libraries, commands loaded to run."""

from __future__ import annotations

import importlib.metadata
import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli import app
from cli.main import COMMANDS

ROOT = Path(__file__).resolve().parents[2]  # run the subprocess here: this checkout's code, not an install
HEAVY = ("sklearn", "scipy", "pandas", "matplotlib", "tensorflow", "keras")


def _modules_after(code: str) -> set[str]:
    """Top-level package names in ``sys.modules`` after running ``code`` in a fresh interpreter."""
    probe = f"{code}\nimport json, sys\nprint(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}})))"
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=120, cwd=ROOT
    )
    return set(json.loads(done.stdout.strip().splitlines()[-1]))


def test_importing_cli_imports_no_heavy_library() -> None:
    loaded = _modules_after("import cli\nassert cli.__file__.startswith(" + repr(str(ROOT)) + ")")
    assert loaded.isdisjoint(HEAVY), sorted(loaded & set(HEAVY))


def test_help_and_version_import_no_heavy_library() -> None:
    for args in (["--help"], ["--version"]):
        code = (
            f"import sys\nsys.argv = ['rapport', *{args!r}]\nfrom cli import main\n"
            "try:\n    main()\nexcept SystemExit:\n    pass"
        )
        loaded = _modules_after(code)
        assert loaded.isdisjoint(HEAVY), (args, sorted(loaded & set(HEAVY)))


def test_version_comes_from_the_package_metadata() -> None:
    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.output.strip() == f"rapport {importlib.metadata.version('rapport')}"


def test_help_lists_every_command() -> None:
    result = CliRunner().invoke(app, ["--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    for name, command in COMMANDS.items():
        assert name in result.output
        assert command.help in result.output


@pytest.mark.parametrize("name", list(COMMANDS))
def test_listed_help_matches_the_command_itself(name: str) -> None:
    loaded = COMMANDS[name].load(name)
    assert loaded.name == name
    own = (loaded.help or "").strip().splitlines()[0]
    assert own == COMMANDS[name].help


def test_a_lazy_command_runs_and_an_unknown_one_is_refused() -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["nlu", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0 and "train" in result.output and "serve" in result.output
    unknown = runner.invoke(app, ["no-such-command"])
    assert unknown.exit_code != 0
    assert "no-such-command" in unknown.output
