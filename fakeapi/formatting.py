"""Telegram's text formatting: ``parse_mode`` parsing into plain text plus entities.

Telegram strips the markup and answers with ``text`` and ``entities`` whose offsets
are counted in UTF-16 code units. Reproducing that (including the "can't parse
entities" errors for unescaped MarkdownV2 characters) lets tests catch formatting
bugs that would only show up against the real Bot API.
"""

from __future__ import annotations

from html.parser import HTMLParser
from typing import Any

from fakeapi.errors import BotApiError, bad_request

__all__ = ["finish_text", "parse_text", "utf16_len"]

_MDV2_RESERVED = set("_*[]()~`>#+-=|{}.!")
_HTML_SIMPLE = {
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "u": "underline",
    "ins": "underline",
    "s": "strikethrough",
    "strike": "strikethrough",
    "del": "strikethrough",
    "tg-spoiler": "spoiler",
    "code": "code",
    "pre": "pre",
    "blockquote": "blockquote",
}


def utf16_len(text: str) -> int:
    """Length of ``text`` in UTF-16 code units, the unit of Telegram entity offsets."""
    return len(text.encode("utf-16-le")) // 2


def _parse_error(detail: str) -> BotApiError:
    return bad_request(f"can't parse entities: {detail}")


class _Builder:
    """Accumulates plain text and open/closed entities while a parser walks markup."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.pos = 0
        self.entities: list[dict[str, Any]] = []

    def add(self, text: str) -> None:
        self.parts.append(text)
        self.pos += utf16_len(text)

    def close(self, kind: str, start: int, **extra: Any) -> None:
        if self.pos > start:
            self.entities.append({"type": kind, "offset": start, "length": self.pos - start, **extra})

    @property
    def text(self) -> str:
        return "".join(self.parts)


class _HtmlParser(HTMLParser):
    def __init__(self, source: str) -> None:
        super().__init__(convert_charrefs=True)
        self.source = source
        self.out = _Builder()
        self.stack: list[tuple[str, int, dict[str, Any]]] = []

    def _byte_offset(self) -> int:
        line, col = self.getpos()
        lines = self.source.split("\n")
        prefix = "\n".join(lines[: line - 1]) + ("\n" if line > 1 else "") + lines[line - 1][:col]
        return len(prefix.encode("utf-8"))

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        extra: dict[str, Any] = {}
        if tag == "a":
            href = attributes.get("href") or ""
            if href.startswith("tg://user?id="):
                # Telegram answers with a full User object; its name is the link text.
                user_id = int(href.split("=", 1)[1] or 0)
                kind, extra = "text_mention", {"user": {"id": user_id, "is_bot": False, "first_name": ""}}
            else:
                kind, extra = "text_link", {"url": href}
        elif tag == "span" and attributes.get("class") == "tg-spoiler":
            kind = "spoiler"
        elif tag == "tg-emoji":
            kind, extra = "custom_emoji", {"custom_emoji_id": attributes.get("emoji-id") or ""}
        elif tag in _HTML_SIMPLE:
            kind = _HTML_SIMPLE[tag]
            if tag == "blockquote" and "expandable" in attributes:
                kind = "expandable_blockquote"
            if tag == "code" and self.stack and self.stack[-1][0] == "pre":
                language = (attributes.get("class") or "").removeprefix("language-")
                if language:
                    self.stack[-1][2]["language"] = language
                kind = "_pre_code"
        else:
            raise _parse_error(f'Unsupported start tag "{tag}" at byte offset {self._byte_offset()}')
        self.stack.append((tag, self.out.pos, {"kind": kind, "_first_part": len(self.out.parts), **extra}))

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1][0] != tag:
            expected = f'"</{self.stack[-1][0]}>"' if self.stack else "nothing"
            raise _parse_error(
                f"Unmatched end tag at byte offset {self._byte_offset()}, "
                f'expected {expected}, found "</{tag}>"'
            )
        _, start, info = self.stack.pop()
        kind = info.pop("kind")
        first_part = info.pop("_first_part")
        if kind == "text_mention":
            info["user"]["first_name"] = "".join(self.out.parts[first_part:]) or str(info["user"]["id"])
        if kind != "_pre_code":
            self.out.close(kind, start, **info)

    def handle_data(self, data: str) -> None:
        self.out.add(data)


def _parse_html(text: str) -> tuple[str, list[dict[str, Any]]]:
    parser = _HtmlParser(text)
    parser.feed(text)
    parser.close()
    if parser.stack:
        raise _parse_error(f'Can\'t find end tag corresponding to start tag "{parser.stack[-1][0]}"')
    return parser.out.text, parser.out.entities


_MDV2_MARKERS = {
    "*": "bold",
    "_": "italic",
    "__": "underline",
    "~": "strikethrough",
    "||": "spoiler",
}
_ENTITY_NAMES = {
    "bold": "Bold",
    "italic": "Italic",
    "underline": "Underline",
    "strikethrough": "Strikethrough",
    "spoiler": "Spoiler",
    "code": "Code",
    "pre": "Pre",
    "text_link": "TextUrl",
}


def _byte_pos(text: str, index: int) -> int:
    return len(text[:index].encode("utf-8"))


def _read_until(text: str, index: int, end: str, kind: str) -> tuple[str, int]:
    """Read an escaped run up to ``end`` (code, pre, URLs); return it and the next index."""
    chunk: list[str] = []
    i = index
    while i < len(text):
        if text[i] == "\\" and i + 1 < len(text):
            chunk.append(text[i + 1])
            i += 2
            continue
        if text.startswith(end, i):
            return "".join(chunk), i + len(end)
        chunk.append(text[i])
        i += 1
    name = _ENTITY_NAMES[kind]
    raise _parse_error(f"Can't find end of {name} entity at byte offset {_byte_pos(text, index)}")


def _parse_markdown(text: str, *, v2: bool) -> tuple[str, list[dict[str, Any]]]:
    out = _Builder()
    open_marks: dict[str, tuple[int, int]] = {}
    link_start: tuple[int, int] | None = None
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text) and (v2 or text[i + 1] in "_*`["):
            out.add(text[i + 1])
            i += 2
            continue
        if text.startswith("```", i):
            body, i_next = _read_until(text, i + 3, "```", "pre")
            language = ""
            if "\n" in body:
                first, rest = body.split("\n", 1)
                if first and " " not in first:
                    language, body = first, rest
            start = out.pos
            out.add(body)
            out.close("pre", start, **({"language": language} if language else {}))
            i = i_next
            continue
        if ch == "`":
            body, i = _read_until(text, i + 1, "`", "code")
            start = out.pos
            out.add(body)
            out.close("code", start)
            continue
        if ch == "[" and link_start is None:
            link_start = (out.pos, i)
            i += 1
            continue
        if ch == "]" and link_start is not None and text.startswith("(", i + 1):
            url, i = _read_until(text, i + 2, ")", "text_link")
            out.close("text_link", link_start[0], url=url)
            link_start = None
            continue
        marker = None
        if v2:
            for candidate in ("__", "||", "*", "_", "~"):
                if text.startswith(candidate, i):
                    marker = candidate
                    break
        elif ch in "*_":
            marker = ch
        if marker is not None:
            kind = _MDV2_MARKERS[marker] if v2 else {"*": "bold", "_": "italic"}[marker]
            if marker in open_marks:
                start, _ = open_marks.pop(marker)
                out.close(kind, start)
            else:
                open_marks[marker] = (out.pos, i)
            i += len(marker)
            continue
        if v2 and ch in _MDV2_RESERVED:
            raise _parse_error(f"Character '{ch}' is reserved and must be escaped with the preceding '\\'")
        out.add(ch)
        i += 1
    if link_start is not None:
        raise _parse_error(
            f"Can't find end of TextUrl entity at byte offset {_byte_pos(text, link_start[1])}"
        )
    if open_marks:
        marker, (_, index) = min(open_marks.items(), key=lambda item: item[1][1])
        offset = _byte_pos(text, index)
        if v2:
            name = _ENTITY_NAMES[_MDV2_MARKERS[marker]]
            raise _parse_error(f"Can't find end of {name} entity at byte offset {offset}")
        raise _parse_error(f"Can't find end of the entity starting at byte offset {offset}")
    out.entities.sort(key=lambda e: (e["offset"], -e["length"]))
    return out.text, out.entities


def parse_text(text: str, parse_mode: str | None) -> tuple[str, list[dict[str, Any]]]:
    """Strip ``parse_mode`` markup from ``text``, returning plain text and entities.

    Raises:
        BotApiError: 400 for an unknown parse mode or markup Telegram would reject.
    """
    if not parse_mode:
        return text, []
    mode = parse_mode.lower()
    if mode == "html":
        plain, entities = _parse_html(text)
        entities.sort(key=lambda e: (e["offset"], -e["length"]))
        return plain, entities
    if mode == "markdownv2":
        return _parse_markdown(text, v2=True)
    if mode == "markdown":
        return _parse_markdown(text, v2=False)
    raise bad_request(f"unsupported parse_mode {parse_mode}")


def finish_text(text: str, entities: list[dict[str, Any]]) -> tuple[str, list[dict[str, Any]]]:
    """Trim surrounding whitespace like Telegram, shifting and clipping entity offsets."""
    stripped = text.strip()
    lead = utf16_len(text[: len(text) - len(text.lstrip())])
    total = utf16_len(stripped)
    result: list[dict[str, Any]] = []
    for entity in entities:
        start = max(entity["offset"] - lead, 0)
        end = min(entity["offset"] + entity["length"] - lead, total)
        if end > start:
            result.append({**entity, "offset": start, "length": end - start})
    return stripped, result
