"""Help-screen fixes that every `rapport` command shares.

Typer 0.29 prints the value type of every option in angle brackets, flags included, so a switch
reads `--verbose <bool>` as if it took a value (and `--help <bool>` too). A flag takes no value:
its type column is left empty. This is the one place that changes how Typer renders help; it
touches nothing that parses arguments.
"""

from __future__ import annotations

from typing import Any

from typer.core import TyperOption

__all__ = ["install"]

_render_type = TyperOption.display_type_rich


def _flag_aware_type(self: TyperOption, ctx: Any) -> str | None:
    if self.is_flag or self.count:
        return None
    result: str | None = _render_type(self, ctx)
    return result


def install() -> None:
    """Render flags without a value type (idempotent)."""
    TyperOption.display_type_rich = _flag_aware_type  # type: ignore[method-assign]
