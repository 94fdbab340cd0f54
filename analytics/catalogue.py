"""The follow-up message catalogue: loading and validating its YAML file."""

from __future__ import annotations

import logging
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from analytics.errors import CatalogueError, UnknownTargetError
from analytics.sequence.tokens import TokenVocabulary

logger = logging.getLogger(__name__)

DEFAULT_CATALOGUE = Path(__file__).resolve().parent / "data" / "followups.yml"
LANGUAGES = ("en", "zh")
_ID = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
_KEYS = frozenset({"id", "text", "targets", "segments", "cooldown_days", "default", "requires", "excludes"})


@dataclass(frozen=True)
class FollowupMessage:
    """One message the scheduler may send, with what it is about and whom it is for.

    `targets` are event tokens (intents, kinds or product events such as `product:upgrade`) the
    message answers; the chooser sends it to users the model expects to need them next. Empty
    `segments` means every segment. `requires` and `excludes` are conditions on the user's
    recent history (the tokens the scheduler reads for the model): every `requires` token must
    be in it and no `excludes` token, e.g. users who did `product:trial_started` but not
    `product:upgrade`.
    """

    id: str
    text_en: str
    text_zh: str
    targets: tuple[str, ...]
    segments: tuple[str, ...] = ()
    cooldown_days: int = 14
    default: bool = False
    requires: tuple[str, ...] = ()
    excludes: tuple[str, ...] = ()

    def fits(self, history: Collection[str]) -> bool:
        """Whether a user with these recent tokens meets `requires` and `excludes`."""
        return all(token in history for token in self.requires) and not any(
            token in history for token in self.excludes
        )

    def text(self, language: str | None) -> str:
        """The text in the user's language: Chinese for any `zh*` code, else English."""
        return self.text_zh if language and language.lower().startswith("zh") else self.text_en

    def eligible_for(self, segment: str | None) -> bool:
        """Whether a user in `segment` may receive this message."""
        return not self.segments or segment in self.segments


@dataclass(frozen=True)
class Catalogue:
    """The validated messages of one catalogue file, in file order."""

    messages: tuple[FollowupMessage, ...]
    source: str

    def get(self, message_id: str) -> FollowupMessage:
        """The message with this id.

        Raises:
            KeyError: naming the id, if the catalogue has no such message.
        """
        for message in self.messages:
            if message.id == message_id:
                return message
        raise KeyError(f"{self.source}: no follow-up message {message_id!r}")

    def default_for(self, segment: str | None) -> FollowupMessage | None:
        """The segment's default message, else the global default (empty segments), else None."""
        for message in self.messages:
            if message.default and segment is not None and segment in message.segments:
                return message
        for message in self.messages:
            if message.default and not message.segments:
                return message
        return None


def load_catalogue(path: str | Path | None = None, *, vocabulary: TokenVocabulary | None = None) -> Catalogue:
    """Read and validate a catalogue file; the packaged default when `path` is None.

    Args:
        vocabulary: the event kinds and the active NLU model's intents; when given, every target
            must be one of them (`check_targets`).

    Raises:
        CatalogueError: naming the file (and message id) when it is missing or invalid.
        UnknownTargetError: naming the message and the target no event kind or intent matches.
    """
    source = Path(path) if path is not None else DEFAULT_CATALOGUE
    try:
        text = source.read_text(encoding="utf-8")
    except OSError as exc:
        raise CatalogueError(f"{source}: cannot read the catalogue: {exc}") from exc
    return loads_catalogue(text, source=str(source), vocabulary=vocabulary)


def check_targets(catalogue: Catalogue, vocabulary: TokenVocabulary) -> None:
    """Check that every message's targets are event kinds or intents the NLU model can give.

    A target nothing can produce would never match a user's next event: the message would be
    scored on its response rate alone, silently, however well the model predicts.

    Raises:
        UnknownTargetError: naming the file, the first message with unknown targets, the
            targets, and the intents that are known.
    """
    for message in catalogue.messages:
        bad = vocabulary.unknown([*message.targets, *message.requires, *message.excludes])
        if bad:
            raise UnknownTargetError(
                f"{catalogue.source}: message {message.id!r}: unknown target tokens {bad}; use event "
                f"kinds, product:<event> or the NLU model's intents "
                f"({', '.join(sorted(vocabulary.intents)) or 'none'})"
            )


def loads_catalogue(
    text: str, *, source: str = "<string>", vocabulary: TokenVocabulary | None = None
) -> Catalogue:
    """Parse and validate catalogue YAML text; `source` names it in error messages.

    Args:
        vocabulary: when given, the targets are checked against it (`check_targets`).

    Raises:
        CatalogueError: on YAML syntax errors, unknown keys, missing texts, unknown target
            tokens (with a vocabulary), duplicate ids, or two defaults for one segment.
    """
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise CatalogueError(f"{source}: invalid YAML: {exc}") from exc
    if not isinstance(document, Mapping) or not isinstance(document.get("messages"), list):
        raise CatalogueError(f"{source}: expected a mapping with a 'messages' list")
    if document.get("version", 1) != 1:
        raise CatalogueError(f"{source}: unsupported catalogue version {document.get('version')!r}")
    messages: list[FollowupMessage] = []
    seen: set[str] = set()
    defaults: dict[str | None, str] = {}
    for position, entry in enumerate(document["messages"], start=1):
        message = _parse_message(entry, source=source, position=position)
        if message.id in seen:
            raise CatalogueError(f"{source}: message {message.id!r}: duplicate id")
        seen.add(message.id)
        if message.default:
            for segment in message.segments or (None,):
                if segment in defaults:
                    where = f"segment {segment!r}" if segment else "all segments"
                    raise CatalogueError(
                        f"{source}: message {message.id!r}: second default for {where} "
                        f"(already {defaults[segment]!r})"
                    )
                defaults[segment] = message.id
        messages.append(message)
    if not messages:
        raise CatalogueError(f"{source}: the catalogue has no messages")
    logger.debug("loaded %d follow-up messages from %s", len(messages), source)
    catalogue = Catalogue(messages=tuple(messages), source=source)
    if vocabulary is not None:
        check_targets(catalogue, vocabulary)
    return catalogue


def _parse_message(entry: Any, *, source: str, position: int) -> FollowupMessage:
    if not isinstance(entry, Mapping):
        raise CatalogueError(f"{source}: message #{position}: expected a mapping, got {entry!r}")
    message_id = entry.get("id")
    if not isinstance(message_id, str) or not _ID.match(message_id):
        raise CatalogueError(
            f"{source}: message #{position}: id {message_id!r} must be lower_snake_case (a-z, 0-9, _)"
        )
    where = f"{source}: message {message_id!r}"
    unknown = sorted(set(entry) - _KEYS)
    if unknown:
        raise CatalogueError(f"{where}: unknown keys {unknown}")
    texts = entry.get("text")
    if not isinstance(texts, Mapping):
        raise CatalogueError(f"{where}: 'text' must map languages {LANGUAGES} to strings")
    for language in LANGUAGES:
        value = texts.get(language)
        if not isinstance(value, str) or not value.strip():
            raise CatalogueError(f"{where}: text.{language} must be a non-empty string, got {value!r}")
    targets = _string_list(entry.get("targets"), where=where, key="targets")
    if not targets:
        raise CatalogueError(f"{where}: 'targets' must list at least one event token")
    segments = _string_list(entry.get("segments", []), where=where, key="segments")
    requires = _string_list(entry.get("requires", []), where=where, key="requires")
    excludes = _string_list(entry.get("excludes", []), where=where, key="excludes")
    both = sorted(set(requires) & set(excludes))
    if both:
        raise CatalogueError(f"{where}: {both} both required and excluded: no user could receive it")
    for token in (*targets, *requires, *excludes):
        if token.startswith("product:") and not token.removeprefix("product:").strip():
            raise CatalogueError(f"{where}: {token!r} names no product event (write product:<event name>)")
    cooldown = entry.get("cooldown_days", 14)
    if isinstance(cooldown, bool) or not isinstance(cooldown, int) or cooldown < 0:
        raise CatalogueError(f"{where}: cooldown_days must be a non-negative integer, got {cooldown!r}")
    default = entry.get("default", False)
    if not isinstance(default, bool):
        raise CatalogueError(f"{where}: default must be true or false, got {default!r}")
    return FollowupMessage(
        id=message_id,
        text_en=texts["en"].strip(),
        text_zh=texts["zh"].strip(),
        targets=tuple(targets),
        segments=tuple(segments),
        cooldown_days=cooldown,
        default=default,
        requires=tuple(requires),
        excludes=tuple(excludes),
    )


def _string_list(value: Any, *, where: str, key: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(item, str) and item for item in value):
        raise CatalogueError(f"{where}: '{key}' must be a list of non-empty strings, got {value!r}")
    return list(value)
