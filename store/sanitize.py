"""Text and JSON that every backend can store: the cleaning done at the store boundary.

PostgreSQL refuses a NUL character in any text column, and no UTF-8 database can hold a lone
surrogate (a half of a UTF-16 pair, which Python strings and JSON escapes can carry). One such
character from a hostile or broken client must not fail a whole batch, so everything written
goes through here: NULs are dropped, lone surrogates become U+FFFD, values are cut to their
column's length, and non-finite numbers inside JSON (which JSON cannot express) become null.
The import path uses `unstorable` instead, to reject such a row with a reason.
"""

from __future__ import annotations

import json
import math
from typing import Any

__all__ = ["REPLACEMENT", "storable_json", "storable_text", "unstorable"]

REPLACEMENT = "\ufffd"
_NUL = "\x00"
# One encoder: `json.dumps` with any non-default option builds a new encoder on every call.
_STRICT_JSON = json.JSONEncoder(allow_nan=False)


def _has_surrogate(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def storable_text(value: str | None, *, limit: int | None = None) -> str | None:
    """`value` without NULs or lone surrogates, at most `limit` characters; None stays None.

    A valid surrogate pair (e.g. an emoji decoded from a JSON escape) is joined into its
    character; only unpaired halves are replaced.
    """
    if value is None:
        return None
    if value.isascii():  # the common case: one C-speed scan, no copy
        if _NUL in value:
            value = value.replace(_NUL, "")
    elif _has_surrogate(value):
        value = value.replace(_NUL, "").encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
    elif _NUL in value:
        value = value.replace(_NUL, "")
    if limit is not None and len(value) > limit:
        value = value[:limit]
    return value


def _clean(value: Any) -> Any:
    if isinstance(value, str):
        return storable_text(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {storable_text(str(key)): _clean(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(item) for item in value]
    return value


def storable_json(value: Any) -> str | None:
    """The JSON text of `value` with every string storable and NaN/Infinity as null.

    The common case costs one `json.dumps`: its ASCII output shows a NUL or a surrogate as a
    `\\u0000` or `\\udXXX` escape, and `allow_nan=False` trips on non-finite numbers; only then
    is the value walked and cleaned. Values JSON cannot encode at all raise TypeError.
    """
    if value is None:
        return None
    try:
        text = _STRICT_JSON.encode(value)
    except ValueError:
        return _STRICT_JSON.encode(_clean(value))
    if "\\u0000" in text or "\\ud" in text:
        return _STRICT_JSON.encode(_clean(value))
    return text


def unstorable(value: Any) -> str | None:
    """Why `value` (a string, or JSON-like data) cannot be stored as it is; None when it can."""
    if isinstance(value, str):
        if _NUL in value:
            return "contains a NUL character"
        if not value.isascii() and _has_surrogate(value):
            return "contains a lone surrogate (not valid Unicode)"
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return f"contains {value!r}, which JSON cannot store"
    if isinstance(value, dict):
        for key, item in value.items():
            reason = unstorable(key) or unstorable(item)
            if reason:
                return reason
    if isinstance(value, list | tuple):
        for item in value:
            reason = unstorable(item)
            if reason:
                return reason
    return None
