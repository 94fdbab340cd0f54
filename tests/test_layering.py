"""Dependencies point one way: nlu and store depend on nothing here; scheduler never imports telegram."""

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
}
PROJECT = set(ALLOWED)
FORBIDDEN_THIRD_PARTY = {
    "scheduler": {"telegram"},
    "analytics": {"telegram"},
    "store": {"telegram"},
    "nlu": {"telegram"},
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
