"""A broadcast's formatting and URL buttons: checked against what Telegram accepts before anything is stored.

Telegram rejects a whole `sendMessage` for one unsupported tag or an unescaped `<`, so a bad
broadcast would fail for every recipient at send time. Checking here, when the manager composes
it, turns that into one clear message on the composer. The campaign keeps the checked form in
its attributes (`{"parse_mode": "HTML", "buttons": [[{"text", "url"}]]}`), which the delivery
engine turns back into an `OutgoingMessage`.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urlsplit

from scheduler.errors import BroadcastError
from scheduler.sender import UrlButton

__all__ = [
    "HTML",
    "MAX_BUTTONS",
    "MAX_BUTTONS_PER_ROW",
    "MAX_LABEL_CHARS",
    "MAX_URL_CHARS",
    "MessageFormat",
    "check_buttons",
    "check_html",
    "format_attributes",
    "message_format",
    "parse_buttons",
]

HTML = "HTML"
# Telegram's inline keyboard limits: 8 buttons in a row, 100 in a keyboard.
MAX_BUTTONS_PER_ROW = 8
MAX_BUTTONS = 100
MAX_LABEL_CHARS = 64  # longer labels are cut off on a phone long before this
MAX_URL_CHARS = 2048
MAX_TEXT_CHARS = 4096  # Telegram counts the text after the markup is removed
URL_SCHEMES = ("https", "http", "tg")

# Telegram's HTML subset (Bot API "HTML style"): tag -> the attributes it may carry.
_TAGS: dict[str, frozenset[str]] = {
    "b": frozenset(),
    "strong": frozenset(),
    "i": frozenset(),
    "em": frozenset(),
    "u": frozenset(),
    "ins": frozenset(),
    "s": frozenset(),
    "strike": frozenset(),
    "del": frozenset(),
    "tg-spoiler": frozenset(),
    "span": frozenset({"class"}),
    "a": frozenset({"href"}),
    "tg-emoji": frozenset({"emoji-id"}),
    "code": frozenset({"class"}),
    "pre": frozenset(),
    "blockquote": frozenset({"expandable"}),
}
_ENTITIES = frozenset({"lt", "gt", "amp", "quot"})


@dataclass(frozen=True)
class MessageFormat:
    """How a campaign's messages are sent: Telegram's parse mode and the URL button rows."""

    parse_mode: str | None = None
    buttons: tuple[tuple[UrlButton, ...], ...] = ()


def _check_url(url: str, *, where: str) -> str:
    stripped = url.strip()
    if not stripped:
        raise BroadcastError(f"{where}: the link is empty")
    if len(stripped) > MAX_URL_CHARS:
        raise BroadcastError(f"{where}: the link has {len(stripped)} characters (at most {MAX_URL_CHARS})")
    if any(c.isspace() or ord(c) < 32 for c in stripped):
        raise BroadcastError(f"{where}: the link {stripped!r} contains spaces or control characters")
    parts = urlsplit(stripped)
    if parts.scheme.lower() not in URL_SCHEMES:
        raise BroadcastError(f"{where}: the link {stripped!r} must start with https://, http:// or tg://")
    if parts.scheme.lower() in ("http", "https") and not parts.hostname:
        raise BroadcastError(f"{where}: the link {stripped!r} has no host")
    if parts.scheme.lower() == "tg" and not (parts.netloc or parts.path):
        raise BroadcastError(f"{where}: the link {stripped!r} names no tg:// action")
    return stripped


def check_buttons(rows: Sequence[Sequence[UrlButton]]) -> tuple[tuple[UrlButton, ...], ...]:
    """The button rows, labels and links stripped; an error naming the first bad button.

    Raises:
        BroadcastError: an empty or over-long label, a link that is not https/http/tg, a row of
            more than 8 buttons or more than 100 in all.
    """
    checked: list[tuple[UrlButton, ...]] = []
    total = 0
    for r, row in enumerate(rows, start=1):
        if not row:
            continue
        if len(row) > MAX_BUTTONS_PER_ROW:
            raise BroadcastError(
                f"button row {r} has {len(row)} buttons; Telegram allows {MAX_BUTTONS_PER_ROW} in a row"
            )
        buttons = []
        for b, button in enumerate(row, start=1):
            where = f"button {b} of row {r}"
            label = button.text.strip()
            if not label:
                raise BroadcastError(f"{where}: the label is empty")
            if len(label) > MAX_LABEL_CHARS:
                raise BroadcastError(
                    f"{where}: the label has {len(label)} characters (at most {MAX_LABEL_CHARS})"
                )
            buttons.append(UrlButton(label, _check_url(button.url, where=where)))
        total += len(buttons)
        checked.append(tuple(buttons))
    if total > MAX_BUTTONS:
        raise BroadcastError(f"{total} buttons; Telegram allows {MAX_BUTTONS} in one message")
    return tuple(checked)


def parse_buttons(text: str) -> tuple[tuple[UrlButton, ...], ...]:
    """Buttons written one row per line, `Label - https://link`, buttons of a row split by `|`.

    Raises:
        BroadcastError: a button without ` - ` between label and link, or any `check_buttons` error.
    """
    rows: list[tuple[UrlButton, ...]] = []
    for r, line in enumerate((ln for ln in text.splitlines() if ln.strip()), start=1):
        row = []
        for b, cell in enumerate(line.split("|"), start=1):
            label, sep, url = cell.rpartition(" - ")
            if not sep:
                raise BroadcastError(
                    f"button {b} of row {r} ({cell.strip()!r}): write it as 'Label - https://link'"
                )
            row.append(UrlButton(label, url))
        rows.append(tuple(row))
    return check_buttons(rows)


class _TelegramHtml(HTMLParser):
    """Walks the markup, refusing what Telegram would refuse, and writes a whitelisted copy."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=False)
        self.stack: list[str] = []
        self.safe: list[str] = []
        self.visible: list[str] = []

    def _where(self) -> str:
        line, column = self.getpos()
        return f"line {line}, column {column + 1}"

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        allowed = _TAGS.get(tag)
        if allowed is None:
            raise BroadcastError(
                f"<{tag}> at {self._where()} is not supported by Telegram; use "
                "b, i, u, s, a, code, pre, blockquote, tg-spoiler"
            )
        values = dict(attrs)
        extra = sorted(set(values) - allowed)
        if extra:
            raise BroadcastError(f"<{tag}> at {self._where()}: attribute {extra[0]!r} is not supported")
        out = tag
        if tag == "a":
            href = values.get("href")
            if href is None:
                raise BroadcastError(f"<a> at {self._where()} has no href")
            out = f'a href="{html.escape(_check_url(href, where=f"the link at {self._where()}"))}"'
        elif tag == "span":
            if values.get("class") != "tg-spoiler":
                raise BroadcastError(
                    f'<span> at {self._where()}: only <span class="tg-spoiler"> is supported'
                )
            out = 'span class="tg-spoiler"'
        elif tag == "code" and values.get("class") is not None:
            language = values["class"] or ""
            if not (self.stack and self.stack[-1] == "pre" and language.startswith("language-")):
                raise BroadcastError(
                    f'<code class> at {self._where()}: only <pre><code class="language-…"> is supported'
                )
            out = f'code class="{html.escape(language)}"'
        elif tag == "tg-emoji":
            emoji = values.get("emoji-id") or ""
            if not emoji.isdigit():
                raise BroadcastError(f"<tg-emoji> at {self._where()} needs a numeric emoji-id")
            out = f'tg-emoji emoji-id="{emoji}"'
        elif tag == "blockquote" and "expandable" in values:
            out = "blockquote expandable"
        self.stack.append(tag)
        self.safe.append(f"<{out}>")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        raise BroadcastError(f"<{tag}/> at {self._where()}: Telegram has no self-closing tags")

    def handle_endtag(self, tag: str) -> None:
        if not self.stack:
            raise BroadcastError(f"</{tag}> at {self._where()} closes a tag that was never opened")
        if self.stack[-1] != tag:
            raise BroadcastError(f"</{tag}> at {self._where()}: expected </{self.stack[-1]}> first")
        self.stack.pop()
        self.safe.append(f"</{tag}>")

    def handle_data(self, data: str) -> None:
        for char, name in (("<", "&lt;"), (">", "&gt;"), ("&", "&amp;")):
            if char in data:
                raise BroadcastError(
                    f"a bare {char!r} near {self._where()}: write {name} (Telegram reads {char} as markup)"
                )
        self.safe.append(data)
        self.visible.append(data)

    def handle_entityref(self, name: str) -> None:
        if name not in _ENTITIES:
            raise BroadcastError(f"&{name}; at {self._where()}: Telegram knows only &lt; &gt; &amp; &quot;")
        self.safe.append(f"&{name};")
        self.visible.append(html.unescape(f"&{name};"))

    def handle_charref(self, name: str) -> None:
        try:
            char = chr(int(name[1:], 16) if name[:1] in "xX" else int(name))
        except (ValueError, OverflowError) as exc:
            raise BroadcastError(f"&#{name}; at {self._where()} is not a character") from exc
        self.safe.append(html.escape(char))
        self.visible.append(char)

    def _refuse(self, what: str) -> None:
        raise BroadcastError(f"{what} at {self._where()} is not supported by Telegram")

    def handle_comment(self, data: str) -> None:
        self._refuse("an HTML comment")

    def handle_decl(self, decl: str) -> None:
        self._refuse("a declaration")

    def handle_pi(self, data: str) -> None:
        self._refuse("a processing instruction")

    def unknown_decl(self, data: str) -> None:
        self._refuse("a declaration")


@dataclass(frozen=True)
class CheckedHtml:
    """A broadcast text in Telegram's HTML: the text as sent, a whitelisted copy, what users read."""

    text: str
    safe_html: str
    visible: str


def check_html(text: str) -> CheckedHtml:
    """Parse `text` as Telegram's HTML; an error naming the first thing Telegram would refuse.

    `safe_html` is rebuilt from the parse, tag by tag from the whitelist with every text escaped,
    so the preview can show it as HTML without trusting the manager's markup.

    Raises:
        BroadcastError: an unsupported tag or attribute, an unclosed or mismatched tag, a bare
            `<`, `>` or `&`, an unknown entity, or more than 4096 characters once the tags are removed.
    """
    parser = _TelegramHtml()
    parser.feed(text)
    parser.close()
    if parser.rawdata:  # what HTMLParser kept back: an unfinished tag such as "<b"
        raise BroadcastError(f"unfinished markup at the end: {parser.rawdata[:20]!r}")
    if parser.stack:
        raise BroadcastError(f"<{parser.stack[-1]}> is never closed")
    visible = "".join(parser.visible)
    if not visible.strip():
        raise BroadcastError("the broadcast text is empty")
    if len(visible) > MAX_TEXT_CHARS:
        raise BroadcastError(
            f"the text has {len(visible)} characters without its tags; Telegram allows {MAX_TEXT_CHARS}"
        )
    return CheckedHtml(text=text, safe_html="".join(parser.safe), visible=visible)


def format_attributes(fmt: MessageFormat) -> dict[str, Any]:
    """The campaign attributes that carry `fmt` (empty for plain text without buttons)."""
    found: dict[str, Any] = {}
    if fmt.parse_mode:
        found["parse_mode"] = fmt.parse_mode
    if fmt.buttons:
        found["buttons"] = [[{"text": b.text, "url": b.url} for b in row] for row in fmt.buttons]
    return found


def message_format(attributes: Mapping[str, Any] | None) -> MessageFormat:
    """The format stored by `format_attributes` (plain text without buttons when absent).

    Rows stored by an older or hand-edited campaign that do not have the expected shape are
    ignored rather than failing every delivery of the campaign.
    """
    if not attributes:
        return MessageFormat()
    parse_mode = attributes.get("parse_mode")
    rows: list[tuple[UrlButton, ...]] = []
    for row in attributes.get("buttons") or ():
        if isinstance(row, list):
            rows.append(
                tuple(
                    UrlButton(str(b["text"]), str(b["url"]))
                    for b in row
                    if isinstance(b, dict) and "text" in b and "url" in b
                )
            )
    return MessageFormat(
        parse_mode=parse_mode if parse_mode == HTML else None, buttons=tuple(r for r in rows if r)
    )
