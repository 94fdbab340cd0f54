"""The `rapport` command line: thin commands that build Settings and call the packages."""

from __future__ import annotations

from cli.main import app, main

__all__ = ["app", "main"]
