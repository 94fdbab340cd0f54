"""parse_mode handling: plain text plus UTF-16 entities, and Telegram's parse errors."""

from __future__ import annotations

import pytest

from fakeapi import BotApiError, parse_text, utf16_len
from fakeapi.formatting import finish_text


def test_html_tags_become_entities_with_utf16_offsets() -> None:
    text, entities = parse_text('😀 <b>bold</b> <a href="https://x.io">link</a> &lt;3', "HTML")
    assert text == "😀 bold link <3"
    assert entities == [
        {"type": "bold", "offset": 3, "length": 4},
        {"type": "text_link", "offset": 8, "length": 4, "url": "https://x.io"},
    ]


def test_html_pre_with_language_and_nested_entities() -> None:
    text, entities = parse_text(
        '<pre><code class="language-python">x = 1</code></pre><i><u>iu</u></i>', "HTML"
    )
    assert text == "x = 1iu"
    assert {"type": "pre", "offset": 0, "length": 5, "language": "python"} in entities
    assert {"type": "italic", "offset": 5, "length": 2} in entities
    assert {"type": "underline", "offset": 5, "length": 2} in entities


@pytest.mark.parametrize(
    ("source", "fragment"),
    [
        ("<foo>x</foo>", 'Unsupported start tag "foo"'),
        ("<b>x", 'Can\'t find end tag corresponding to start tag "b"'),
        ("<b>x</i>", "Unmatched end tag"),
    ],
)
def test_bad_html_is_rejected(source: str, fragment: str) -> None:
    with pytest.raises(BotApiError) as info:
        parse_text(source, "HTML")
    assert info.value.error_code == 400
    assert info.value.description.startswith("Bad Request: can't parse entities: ")
    assert fragment in info.value.description


def test_markdown_v2_entities_and_escapes() -> None:
    text, entities = parse_text(r"*b* _i_ __u__ ~s~ ||sp|| `c\`` [t](https://a.b) 1\.5", "MarkdownV2")
    assert text == "b i u s sp c` t 1.5"
    assert [e["type"] for e in entities] == [
        "bold",
        "italic",
        "underline",
        "strikethrough",
        "spoiler",
        "code",
        "text_link",
    ]
    assert entities[-1]["url"] == "https://a.b"


def test_markdown_v2_unescaped_reserved_character_is_an_error() -> None:
    with pytest.raises(BotApiError, match=r"Character '\.' is reserved"):
        parse_text("Version 1.5", "MarkdownV2")


def test_markdown_v2_unclosed_entity_names_it() -> None:
    with pytest.raises(BotApiError, match="Can't find end of Bold entity at byte offset 4"):
        parse_text(r"ab\ *c", "MarkdownV2")


def test_legacy_markdown_is_lenient_about_dots() -> None:
    text, entities = parse_text("*Price:* 1.5 [docs](https://d.io)", "Markdown")
    assert text == "Price: 1.5 docs"
    assert entities[0] == {"type": "bold", "offset": 0, "length": 6}
    assert entities[1]["type"] == "text_link"


def test_unknown_parse_mode_is_rejected() -> None:
    with pytest.raises(BotApiError, match="unsupported parse_mode"):
        parse_text("x", "BBCode")


def test_finish_text_trims_and_shifts_entities() -> None:
    text, entities = finish_text("  hi there \n", [{"type": "bold", "offset": 2, "length": 10}])
    assert text == "hi there"
    assert entities == [{"type": "bold", "offset": 0, "length": 8}]


def test_utf16_len_counts_astral_characters_twice() -> None:
    assert utf16_len("a😀") == 3
