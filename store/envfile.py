"""`.env.example`, generated from the settings object so that it cannot drift from it.

`python -m store.envfile > .env.example` rewrites the file; `tests/store/test_envfile.py` fails when
the committed file differs from what this renders, so a new setting cannot ship undocumented.
"""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path
from typing import Any

from pydantic import AliasChoices
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from store.settings import Settings

__all__ = ["env_name", "render_env_example"]

_HEADER = """\
# Rapport settings. Copy to `.env` (read from the working directory) or set them in the
# environment. Every line below is commented out and shows the default; uncomment to change it.
# Generated from store/settings.py by `python -m store.envfile > .env.example`.
"""
_WIDTH = 98


def env_name(name: str, field: FieldInfo) -> str:
    """The environment variable a field is read from (its first alias, else `RAPPORT_<NAME>`)."""
    alias = field.validation_alias
    if isinstance(alias, AliasChoices) and isinstance(alias.choices[0], str):
        return alias.choices[0]
    prefix = str(Settings.model_config.get("env_prefix", ""))
    return f"{prefix}{name}".upper()


def _default_text(field: FieldInfo) -> str:
    if field.default_factory is not None:
        value: Any = field.default_factory()  # type: ignore[call-arg]
    elif field.default is PydanticUndefined:
        value = None
    else:
        value = field.default
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ",".join(str(item) for item in value)
    if isinstance(value, dict):
        return ",".join(f"{key}={item}" for key, item in value.items()) if value else ""
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, str):
        return value
    return json.dumps(value)


def render_env_example() -> str:
    """Every setting as a commented `NAME=default` line under its one-line description."""
    lines = [_HEADER]
    for name, field in Settings.model_fields.items():
        description = " ".join((field.description or "").split())
        lines.extend(
            textwrap.wrap(description, width=_WIDTH - 2, initial_indent="# ", subsequent_indent="# ")
        )
        lines.append(f"# {env_name(name, field)}={_default_text(field)}")
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.stdout.write(render_env_example())
