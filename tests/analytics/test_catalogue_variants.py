"""Follow-up messages with text variants: parsing, stable assignment, and catalogue files refused whole."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from analytics.catalogue import MAX_TEXT_CHARS, FollowupVariant, VariantButton, loads_catalogue
from analytics.errors import CatalogueError
from analytics.experiments import assign_arm

HEAD = """
messages:
  - id: tips
    text: {en: "Tips.", zh: "提示。"}
    targets: [pricing]
    default: true
"""
VARIANTS = (
    HEAD
    + """    control_share: 0.2
    variants:
      - text: {en: "Save with batches.", zh: "批量更省钱。"}
        buttons: [{text: "Show me"}, {text: "Docs", url: "https://example.com/docs"}]
      - text: {en: "Batches cost less.", zh: "批量更便宜。"}
      - key: D
        text: {en: "Try batches.", zh: "试试批量。"}
"""
)


def test_variants_parse_with_keys_buttons_and_control_share() -> None:
    message = loads_catalogue(VARIANTS, source="v.yml").get("tips")
    assert message.control_share == 0.2
    assert [v.key for v in message.variants] == ["A", "B", "D"]
    assert message.variants[0] == FollowupVariant(
        "A",
        "Save with batches.",
        "批量更省钱。",
        (VariantButton("Show me"), VariantButton("Docs", "https://example.com/docs")),
    )
    assert message.variants[1].text("zh-hans") == "批量更便宜。" and message.variants[1].buttons == ()
    assert message.experiment_key == "followup:tips"


def test_a_message_without_variants_is_unchanged() -> None:
    message = loads_catalogue(HEAD).get("tips")
    assert message.variants == () and message.control_share == 0.0
    with pytest.raises(ValueError, match="no variants"):
        message.arm_for(1)


def test_assignment_is_stable_follows_assign_arm_and_splits_by_share() -> None:
    message = loads_catalogue(VARIANTS).get("tips")
    again = loads_catalogue(VARIANTS).get("tips")  # a re-run reads the file afresh
    users = range(1, 5001)
    arms = [message.arm_for(u) for u in users]
    assert arms == [again.arm_for(u) for u in users]
    weights = {"control": 0.2, "A": 0.8 / 3, "B": 0.8 / 3, "D": 0.8 / 3}
    assert [a.key if a else "control" for a in arms] == [
        assign_arm("followup:tips", u, weights) for u in users
    ]
    counts = Counter(a.key if a else "control" for a in arms)
    assert abs(counts["control"] / 5000 - 0.2) < 0.03
    assert all(abs(counts[k] / 5000 - 0.8 / 3) < 0.03 for k in "ABD")


def test_without_control_share_nobody_is_control() -> None:
    text = VARIANTS.replace("    control_share: 0.2\n", "")
    message = loads_catalogue(text).get("tips")
    assert all(message.arm_for(u) is not None for u in range(1, 2001))


def _variants(count: int) -> str:
    items = "".join(f'      - text: {{en: "Text {i}", zh: "文本 {i}"}}\n' for i in range(count))
    return HEAD + "    variants:\n" + items


LONG = "x" * (MAX_TEXT_CHARS + 1)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (_variants(1), "'tips': 'variants' must list 2 to 8 variants, got 1"),
        (_variants(9), "'tips': 'variants' must list 2 to 8 variants, got 9"),
        (HEAD + "    variants: []\n", "2 to 8 variants, got 0"),
        (_variants(2).replace('"Text 1"', '"  "'), "variant B: text.en must be a non-empty string"),
        (
            _variants(2).replace("      - text", "      - colour: red\n        text", 1),
            "variant A: unknown keys",
        ),
        (_variants(2).replace('"Text 1"', f'"{LONG}"'), f"variant B: text.en has {len(LONG)} characters"),
        (HEAD.replace('"Tips."', f'"{LONG}"'), f"text.en has {len(LONG)} characters; Telegram allows 4096"),
        (_variants(2) + "      - key: A\n        text: {en: a, zh: b}\n", "variant A: duplicate variant key"),
        (
            _variants(2).replace("      - text", "      - key: Z\n        text", 1),
            "key 'Z' must be one of A to H",
        ),
        (_variants(2) + "    control_share: 1.0\n", "control_share must be a number in [0, 1)"),
        (HEAD + "    control_share: 0.3\n", "control_share needs variants"),
        (_variants(2).replace('"文本 0"}', '"文本 0"}\n        buttons: [{text: ""}]'), "button label"),
        (
            _variants(2).replace('"文本 0"}', '"文本 0"}\n        buttons: [{text: a, url: "ftp://x"}]'),
            "button URL 'ftp://x' must start with https://",
        ),
        (HEAD + "    targets: [greet]\n", "duplicate key 'targets'"),
        (_variants(2).replace('zh: "文本 0"', 'en: "again"'), "duplicate key 'en'"),
    ],
)
def test_bad_variant_catalogues_are_refused_with_a_clear_error(text: str, message: str) -> None:
    with pytest.raises(CatalogueError) as raised:
        loads_catalogue(text, source="bad.yml")
    assert message in str(raised.value) and str(raised.value).startswith("bad.yml: ")


def test_a_json_catalogue_with_variants_loads_like_yaml() -> None:
    document = {
        "messages": [
            {
                "id": "tips",
                "text": {"en": "Tips.", "zh": "提示。"},
                "targets": ["pricing"],
                "variants": [{"text": {"en": "One", "zh": "一"}}, {"text": {"en": "Two", "zh": "二"}}],
            }
        ]
    }
    message = loads_catalogue(json.dumps(document, ensure_ascii=False), source="c.json").get("tips")
    assert [(v.key, v.text_en) for v in message.variants] == [("A", "One"), ("B", "Two")]
