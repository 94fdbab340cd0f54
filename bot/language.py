"""The language a text is written in, told from its script: Chinese ideographs against Latin words.

The bot speaks English and Chinese, and the two are told apart by their scripts, so a question
needs no model to say which one it is in. The rule, by script share:

- Chinese ideographs are counted one by one, Latin letters one per word (a run of letters):
  an ideograph carries about as much as a word, and Chinese has no spaces to count words by.
- The text is Chinese when its ideographs are at least as many as its Latin words, English when
  the Latin words are more. "API key 怎么用" is 3 ideographs against 2 words: Chinese. "How do I
  use 微调?" is 2 against 4: English. A tie goes to Chinese, because Chinese writers use Latin
  product words (API, GPT-4, token) all the time, while English writers seldom write ideographs.
- URLs, e-mail addresses, @mentions, /commands and `code` are left out: they are Latin whatever
  the language around them. Digits, emoji, punctuation and spaces carry no language.
- Letters of other scripts (Cyrillic, Arabic, Hangul, ...) count one per word, Japanese kana one
  per character; ideographs in a text with kana are Japanese, not Chinese. When these outweigh
  the Chinese and Latin ones together, the text is in a language the bot does not speak.

`written_language` is None when the text tells nothing (emoji or digits only, a language the bot
does not speak): the caller then keeps the language of the conversation, or the client's.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from dataclasses import dataclass
from enum import Enum

__all__ = ["ScriptCounts", "script_counts", "written_language"]

ENGLISH = "en"
CHINESE = "zh"

_CODE = re.compile(r"```.*?```|`[^`]*`", re.DOTALL)
"""Code blocks and inline code; each try ends at the next backtick, so this stays linear."""
_TOKEN = re.compile(r"\S+")
_ASCII_RUN = re.compile(r"[!-~]+")
_HANDLE = re.compile(r"[@/][A-Za-z0-9_]+(?:@[A-Za-z0-9_]+)?")
"""An @mention or a /command (with its @bot), at the start of a token: usernames are ASCII."""

_WORD_JOINERS = frozenset("'\u2019")


class _Script(Enum):
    HAN = "han"
    LATIN = "latin"
    KANA = "kana"
    OTHER = "other"


@dataclass(frozen=True)
class ScriptCounts:
    """How much of a text is in each script, in the units the rule compares.

    Attributes:
        han: Chinese ideographs, one each (none when the text has kana).
        latin: Latin words: runs of Latin letters, full-width ones included.
        other: Words of other scripts, plus Japanese kana and the ideographs beside them.
    """

    han: int = 0
    latin: int = 0
    other: int = 0


@functools.lru_cache(maxsize=8192)
def _script(char: str) -> _Script | None:
    """The script of one letter, None for what is not a letter (digits, emoji, punctuation).

    Plain comparisons for the common blocks; only rarer letters pay for `unicodedata.name`.
    """
    if not char.isalpha():
        return None
    code = ord(char)
    if code < 0x250:  # ASCII, Latin-1 and Latin Extended-A and -B
        return _Script.LATIN
    if 0x4E00 <= code <= 0x9FFF or 0x3400 <= code <= 0x4DBF or 0xF900 <= code <= 0xFAFF:
        return _Script.HAN
    if 0x3040 <= code <= 0x30FF or 0x31F0 <= code <= 0x31FF or 0xFF66 <= code <= 0xFF9F:
        return _Script.KANA
    if 0xFF21 <= code <= 0xFF3A or 0xFF41 <= code <= 0xFF5A:  # full-width Latin
        return _Script.LATIN
    if 0x20000 <= code <= 0x3134F:  # ideograph extensions B to G
        return _Script.HAN
    if unicodedata.name(char, "").startswith("LATIN "):  # e.g. Vietnamese letters
        return _Script.LATIN
    return _Script.OTHER


def _language_part(token: str) -> str:
    """What of one whitespace-separated token is language: URLs, addresses and handles are not.

    Works per token with anchored or linear patterns, so a hostile 4096-character message costs
    linear time; the ASCII of a URL or an e-mail address goes, ideographs glued to it stay.
    """
    if "://" in token or token[:4].lower() == "www." or "@" in token[1:]:
        return _ASCII_RUN.sub(" ", token)
    if token[0] in "@/" and (handle := _HANDLE.match(token)) is not None:
        return token[handle.end() :]
    return token


def script_counts(text: str) -> ScriptCounts:
    """Count a text's ideographs, Latin words and other words (see the module's rule)."""
    han = latin = other = kana = 0
    previous: _Script | None = None
    for char in " ".join(_language_part(token) for token in _TOKEN.findall(_CODE.sub(" ", text))):
        script = _script(char)
        if script is _Script.HAN:
            han += 1
        elif script is _Script.KANA:
            kana += 1
        elif script is not None and script is not previous:  # the first letter of a word
            if script is _Script.LATIN:
                latin += 1
            else:
                other += 1
        if char not in _WORD_JOINERS:  # "don't" is one word
            previous = script
    if kana:  # ideographs among kana are Japanese kanji
        return ScriptCounts(han=0, latin=latin, other=other + kana + han)
    return ScriptCounts(han=han, latin=latin, other=other)


def written_language(text: str | None) -> str | None:
    """`zh` or `en` for the language `text` is written in; None when its script tells nothing."""
    if not text:
        return None
    counts = script_counts(text)
    spoken = counts.han + counts.latin
    if spoken == 0 or counts.other > spoken:
        return None
    return CHINESE if counts.han >= counts.latin else ENGLISH
