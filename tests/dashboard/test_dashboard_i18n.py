"""Both languages say everything the pages ask for, with the same placeholders."""

from __future__ import annotations

import re
import string
from pathlib import Path

from dashboard.i18n import EN, ZH, translate

TEMPLATES = Path(__file__).resolve().parents[2] / "dashboard" / "templates"
KEY = re.compile(r"""\bt\(\s*["']([a-z_.]+)["']""")


def _fields(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def test_chinese_has_every_english_text_with_the_same_placeholders() -> None:
    assert set(ZH) == set(EN)
    assert {k for k in EN if _fields(EN[k]) != _fields(ZH[k])} == set()


def test_every_key_the_templates_use_exists() -> None:
    texts = [path.read_text(encoding="utf-8") for path in TEMPLATES.glob("*.html")]
    used = {key for text in texts for key in KEY.findall(text) if not key.endswith(".")}  # not "x." ~ y
    assert used, "no t(...) calls found"
    assert used - set(EN) == set()


def test_translate_fills_values_and_falls_back_to_english() -> None:
    assert translate("overview.days", "zh", n=7) == "7 天"
    assert translate("overview.days", "fr", n=7) == "7 days"
    assert translate("no.such.key", "en") == "no.such.key"
