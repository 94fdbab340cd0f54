"""A manager's broadcast text with variants: one message per variant, separated by a line `---`.

A variant's last lines may be buttons: `[Label]` is a button whose press is tracked (`push_click`),
`[Label](https://...)` a link button (Telegram does not tell the bot about it: not trackable).
"""

from __future__ import annotations

import re

from scheduler.experiments import VariantDraft
from store.experiments import VariantButton

__all__ = ["SEPARATOR", "describe_buttons", "parse_variants"]

SEPARATOR = "---"
_BUTTON = re.compile(r"^\[(?P<label>[^\]]+)\](?:\((?P<url>[^)\s]+)\))?$")


def _variant(block: str) -> VariantDraft:
    lines = block.strip().splitlines()
    buttons: list[VariantButton] = []
    while lines and (match := _BUTTON.match(lines[-1].strip())) is not None:
        buttons.insert(0, VariantButton(match["label"].strip(), match["url"]))
        lines.pop()
    return VariantDraft("\n".join(lines).strip(), tuple(buttons))


def parse_variants(text: str) -> tuple[VariantDraft, ...] | None:
    """The variants of a text with `---` lines between them; None without such a line (a plain broadcast)."""
    blocks: list[list[str]] = [[]]
    for line in text.splitlines():
        if line.strip() == SEPARATOR:
            blocks.append([])
        else:
            blocks[-1].append(line)
    if len(blocks) == 1:
        return None
    return tuple(_variant("\n".join(block)) for block in blocks)


def describe_buttons(variant: VariantDraft) -> str:
    """`buttons: [Show me] [Docs ↗ not trackable]`, or an empty string."""
    if not variant.buttons:
        return ""
    shown = " ".join(f"[{b.text}]" if b.trackable else f"[{b.text} ↗ not trackable]" for b in variant.buttons)
    return f"buttons: {shown}"
