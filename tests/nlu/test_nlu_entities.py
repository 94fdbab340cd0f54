"""Regex, lookup and annotation entities with synonym mapping and exact character offsets."""

from __future__ import annotations

from nlu import EntityExtractor, reads_yaml

DATA = reads_yaml(
    """\
nlu:
- intent: pricing
  examples: |
    - how much is [pro](plan)
    - price of [专业版]{"entity": "plan", "value": "pro"}
- synonym: enterprise
  examples: |
    - Enterprise Plan
- lookup: plan
  examples: |
    - enterprise plan
    - enterprise
- lookup: model
  examples: |
    - rapport-pro
- regex: date
  examples: |
    - \\d{4}-\\d{2}-\\d{2}
"""
)


def _extract(text: str) -> list[tuple[str, str, str]]:
    extractor = EntityExtractor().fit(DATA)
    found = extractor.extract(text)
    for entity in found:
        assert entity.start < entity.end
        assert entity.extractor == "RegexEntityExtractor"
    return [(e.entity, e.value, text[e.start : e.end]) for e in found]


def test_lookup_annotation_regex_and_synonyms() -> None:
    assert _extract("Is PRO cheaper than the Enterprise plan on 2026-12-01?") == [
        ("plan", "pro", "PRO"),
        ("plan", "enterprise", "Enterprise plan"),
        ("date", "2026-12-01", "2026-12-01"),
    ]


def test_words_are_not_matched_inside_other_words() -> None:
    assert _extract("our product is professional") == []


def test_chinese_terms_match_next_to_chinese_characters() -> None:
    assert _extract("我想买专业版的套餐") == [("plan", "pro", "专业版")]


def test_longest_overlapping_match_wins() -> None:
    assert _extract("rapport-pro pricing") == [("model", "rapport-pro", "rapport-pro")]


def test_offsets_index_the_original_text() -> None:
    text = "\u202e\x00 ｐｒｏ? no: pro!"
    assert _extract(text) == [("plan", "pro", "pro")]
    assert text.index("pro") == EntityExtractor().fit(DATA).extract(text)[0].start


def test_state_round_trips_and_unfitted_extractor_finds_nothing() -> None:
    fitted = EntityExtractor().fit(DATA)
    again = EntityExtractor.from_dict(fitted.to_dict())
    assert again.extract("pro on 2026-01-02") == fitted.extract("pro on 2026-01-02")
    assert EntityExtractor().extract("pro") == ()
