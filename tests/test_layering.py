"""Dependencies point one way.

store and nlu depend on nothing here; analytics on store; scheduler on store and analytics and never
on telegram; bot (the Telegram adapter) on those four but never on the fake Bot API server, the demo
or the CLI; the fake Bot API server (fakeapi) on nothing of the project; demo on everything but cli;
cli (the terminal's composition root) on everything. Nothing but cli, tests and benchmarks imports demo.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ALLOWED = {
    "store": set(),
    "nlu": set(),
    "analytics": {"store"},
    "scheduler": {"store", "analytics"},
    "bot": {"store", "nlu", "analytics", "scheduler"},
    "fakeapi": set(),
    "ingest": {"store"},
    "demo": {"store", "nlu", "analytics", "scheduler", "bot", "fakeapi"},
    "cli": {"store", "nlu", "analytics", "scheduler", "bot", "fakeapi", "demo", "dashboard", "ingest"},
    "dashboard": {"store", "nlu", "analytics", "scheduler"},
}
PROJECT = set(ALLOWED)
FORBIDDEN_THIRD_PARTY = {
    "scheduler": {"telegram"},
    "analytics": {"telegram"},
    "store": {"telegram"},
    "nlu": {"telegram"},
    "fakeapi": {"telegram"},
    "ingest": {"telegram"},
}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_package_imports_only_lower_layers(package: str) -> None:
    offenders = []
    for path in sorted((ROOT / package).rglob("*.py")):
        imported = _imports(path)
        bad = (imported & PROJECT) - ALLOWED[package] - {package}
        bad |= imported & FORBIDDEN_THIRD_PARTY.get(package, set())
        if bad:
            offenders.append(f"{path.relative_to(ROOT)} imports {sorted(bad)}")
    assert offenders == []


def test_tensorflow_is_not_imported_at_module_level_outside_the_sequence_model() -> None:
    offenders = []
    for package in PROJECT:
        for path in sorted((ROOT / package).rglob("*.py")):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            for node in tree.body:
                names = []
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.module:
                    names = [node.module]
                if any(name.split(".")[0] in {"tensorflow", "keras"} for name in names):
                    offenders.append(str(path.relative_to(ROOT)))
    assert offenders == []


def test_only_the_cli_tests_and_benchmarks_import_the_demo() -> None:
    importers = {
        str(path.relative_to(ROOT))
        for package in PROJECT - {"demo", "cli"}
        for path in sorted((ROOT / package).rglob("*.py"))
        if "demo" in _imports(path)
    }
    assert importers == set()


def _modules(path: Path, root: Path = ROOT) -> set[str]:
    """Every module (or module attribute) `path` imports, by full dotted name, relative imports resolved."""
    package = ".".join(path.relative_to(root).with_suffix("").parts[:-1])
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parent, *([node.module] if node.module else [])])
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


@pytest.mark.parametrize(
    ("folder", "forbidden"), [("bot/handlers", "bot.admin"), ("bot/admin", "bot.handlers")]
)
def test_the_users_handlers_and_the_managers_commands_do_not_import_each_other(
    folder: str, forbidden: str
) -> None:
    """What both need (button verification, the context, replies) lives one level lower in bot/."""
    offenders = [
        f"{path.relative_to(ROOT)} imports {name}"
        for path in sorted((ROOT / folder).rglob("*.py"))
        for name in sorted(_modules(path))
        if name == forbidden or name.startswith(f"{forbidden}.")
    ]
    assert offenders == []


def test_imports_are_resolved_relative_to_the_importing_module(tmp_path: Path) -> None:
    # The check above sees through relative imports, so `from ..admin import x` can't slip by.
    probe = tmp_path / "bot" / "handlers" / "probe.py"
    probe.parent.mkdir(parents=True)
    probe.write_text("from ..admin import broadcast\nfrom . import answers\nimport bot.admin.access\n")
    found = _modules(probe, root=tmp_path)
    assert {"bot.admin", "bot.admin.broadcast", "bot.handlers.answers", "bot.admin.access"} <= found


def test_every_top_level_package_is_checked() -> None:
    packages = {
        path.parent.name for path in ROOT.glob("*/__init__.py") if path.parent.name not in {"tests", "bench"}
    }
    assert packages == PROJECT
