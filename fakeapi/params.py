"""Typed access to Bot API call parameters.

Telegram accepts every parameter either natively typed (JSON bodies) or as a string
(query strings, urlencoded and multipart forms, where nested objects are JSON-encoded
strings). :class:`Params` hides that difference so the method handlers see one shape,
and words its complaints the way Telegram does.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from fakeapi.errors import bad_request

__all__ = ["Params"]

_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off", ""}


class Params:
    """Read-only view over the merged parameters of one call.

    Args:
        raw: Parameter name to value; strings are decoded lazily by the getters.
    """

    def __init__(self, raw: Mapping[str, Any]):
        self.raw: dict[str, Any] = dict(raw)

    def __contains__(self, name: object) -> bool:
        return name in self.raw and self.raw[name] is not None

    def as_dict(self) -> dict[str, Any]:
        """Return the parameters with JSON-looking strings decoded, for the call record."""
        out: dict[str, Any] = {}
        for key, value in self.raw.items():
            out[key] = _maybe_json(value)
        return out

    def get_str(self, name: str, default: str | None = None) -> str | None:
        """Return a string parameter (numbers are stringified as Telegram does)."""
        value = self.raw.get(name)
        if value is None:
            return default
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, int | float | str):
            return str(value)
        raise bad_request(f'field "{name}" must be of type String')

    def get_int(self, name: str, default: int | None = None) -> int | None:
        """Return an integer parameter, accepting decimal strings."""
        value = self.raw.get(name)
        if value is None or value == "":
            return default
        if isinstance(value, bool):
            return int(value)
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            try:
                return int(value.strip())
            except ValueError:
                pass
        raise bad_request(f'field "{name}" must be of type Integer')

    def get_float(self, name: str, default: float | None = None) -> float | None:
        """Return a numeric parameter."""
        value = self.raw.get(name)
        if value is None or value == "":
            return default
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
        raise bad_request(f'field "{name}" must be of type Number')

    def get_bool(self, name: str, default: bool = False) -> bool:
        """Return a boolean parameter; ``"true"``/``"1"`` and friends count as true."""
        value = self.raw.get(name)
        if value is None:
            return default
        if isinstance(value, bool):
            return value
        if isinstance(value, int):
            return value != 0
        if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
            return value.strip().lower() in _TRUE
        raise bad_request(f'field "{name}" must be of type Boolean')

    def get_json(self, name: str) -> Any:
        """Return a JSON-serialized parameter, given either decoded or as a string."""
        value = self.raw.get(name)
        if value is None:
            return None
        if isinstance(value, str):
            if value == "":
                return None
            try:
                return json.loads(value)
            except json.JSONDecodeError as exc:
                raise bad_request(f"can't parse {name} JSON object") from exc
        return value

    def get_obj(self, name: str) -> dict[str, Any] | None:
        """Return a JSON object parameter (e.g. ``reply_markup``)."""
        value = self.get_json(name)
        if value is None:
            return None
        if not isinstance(value, dict):
            raise bad_request(f"can't parse {name} JSON object")
        return value

    def get_list(self, name: str) -> list[Any] | None:
        """Return a JSON array parameter (e.g. ``options``, ``allowed_updates``)."""
        value = self.get_json(name)
        if value is None:
            return None
        if not isinstance(value, list):
            raise bad_request(f'field "{name}" must be an Array')
        return value


def _maybe_json(value: Any) -> Any:
    """Decode strings that hold a JSON object or array; leave everything else alone."""
    if isinstance(value, str) and value[:1] in ("{", "["):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value
