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
_VARIANT_KEYS = frozenset({"variants", "control_share"})
"""Keys of a message with text variants (an experiment on that message; see `FollowupVariant`)."""
VARIANT_NAMES = "ABCDEFGH"
MIN_VARIANTS, MAX_VARIANTS = 2, 8
MAX_TEXT_CHARS = 4096
"""Telegram's limit on one message's text."""
MAX_BUTTONS, MAX_BUTTON_TEXT = 8, 64
CONTROL = "control"
"""The arm of a variant experiment that gets nothing (planned as a `skipped`/`control` row)."""


@dataclass(frozen=True)
class VariantButton:
    """A button on a follow-up variant: a callback button (its press is tracked) or a URL button."""

    text: str
    url: str | None = None


@dataclass(frozen=True)
class FollowupVariant:
    """One text variant of a follow-up message, keyed "A".."H" in file order (or by its `key`)."""

    key: str
    text_en: str
    text_zh: str
    buttons: tuple[VariantButton, ...] = ()

    def text(self, language: str | None) -> str:
        """The text in the user's language: Chinese for any `zh*` code, else English."""
        return self.text_zh if language and language.lower().startswith("zh") else self.text_en


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
    variants: tuple[FollowupVariant, ...] = ()
    """2-8 text variants (an experiment on this message), or none: the message's own text is sent."""
    control_share: float = 0.0
    """With variants: the share of the users this message is chosen for who get nothing."""
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

    @property
    def experiment_key(self) -> str:
        """The salt of this message's variant assignment: its id, so no restart or re-run moves a user."""
        return f"followup:{self.id}"

    def arm_for(self, user_id: int) -> FollowupVariant | None:
        """The user's variant when this message is chosen for them; None for the control arm.

        `analytics.experiments.assign_arm` on (`experiment_key`, user): `control_share` of users
        get nothing, the rest the variants in equal shares. Raises ValueError without variants.
        """
        from analytics.experiments import assign_arm  # here: it loads SciPy, which loading a file needs not

        if not self.variants:
            raise ValueError(f"follow-up message {self.id!r} has no variants")
        weights: dict[str, float] = {CONTROL: self.control_share} if self.control_share > 0 else {}
        weights.update({v.key: (1.0 - self.control_share) / len(self.variants) for v in self.variants})
        arm = assign_arm(self.experiment_key, user_id, weights)
        return None if arm == CONTROL else next(v for v in self.variants if v.key == arm)

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
            tokens (with a vocabulary), duplicate ids, two defaults for one segment, a key given
            twice in one mapping, texts over Telegram's 4,096 characters, or bad variants (not 2
            to 8, empty or over-long texts, duplicate variant keys, bad buttons or control share).
    """
    try:
        document = yaml.load(text, Loader=_UniqueKeyLoader)  # a SafeLoader subclass
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
    unknown = sorted(set(entry) - _KEYS - _VARIANT_KEYS)
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
    for language in LANGUAGES:
        _check_length(texts[language], where=f"{where}: text.{language}")
    variants, control_share = _parse_variants(entry, where=where)
    return FollowupMessage(
        id=message_id,
        text_en=texts["en"].strip(),
        text_zh=texts["zh"].strip(),
        targets=tuple(targets),
        segments=tuple(segments),
        cooldown_days=cooldown,
        default=default,
        variants=variants,
        control_share=control_share,
        requires=tuple(requires),
        excludes=tuple(excludes),
    )


class _UniqueKeyLoader(yaml.SafeLoader):
    """The safe loader, refusing a key given twice in one mapping (PyYAML keeps the last silently)."""


def _unique_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)  # type: ignore[no-untyped-call]
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r} (a key may appear once in a mapping)", key_node.start_mark
            )
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _unique_mapping)


def _check_length(text: str, *, where: str) -> None:
    if len(text.strip()) > MAX_TEXT_CHARS:
        raise CatalogueError(f"{where} has {len(text.strip())} characters; Telegram allows {MAX_TEXT_CHARS}")


def _parse_variants(entry: Mapping[str, Any], *, where: str) -> tuple[tuple[FollowupVariant, ...], float]:
    """The message's variants and control share, checked; ((), 0.0) for a message without variants."""
    raw = entry.get("variants")
    share = entry.get("control_share", 0.0)
    if raw is None:
        if "control_share" in entry:
            raise CatalogueError(f"{where}: control_share needs variants")
        return (), 0.0
    if not isinstance(raw, list) or not MIN_VARIANTS <= len(raw) <= MAX_VARIANTS:
        count = len(raw) if isinstance(raw, list) else raw
        raise CatalogueError(
            f"{where}: 'variants' must list {MIN_VARIANTS} to {MAX_VARIANTS} variants, got {count!r}"
        )
    if isinstance(share, bool) or not isinstance(share, int | float) or not 0.0 <= share < 1.0:
        raise CatalogueError(f"{where}: control_share must be a number in [0, 1), got {share!r}")
    variants: list[FollowupVariant] = []
    for position, item in enumerate(raw):
        variant = _parse_variant(item, where=where, position=position)
        if any(v.key == variant.key for v in variants):
            raise CatalogueError(f"{where}: variant {variant.key}: duplicate variant key")
        variants.append(variant)
    return tuple(variants), float(share)


def _parse_variant(item: Any, *, where: str, position: int) -> FollowupVariant:
    if not isinstance(item, Mapping):
        raise CatalogueError(f"{where}: variant #{position + 1}: expected a mapping, got {item!r}")
    key = item.get("key", VARIANT_NAMES[position])
    if not isinstance(key, str) or key not in VARIANT_NAMES:
        raise CatalogueError(f"{where}: variant #{position + 1}: key {key!r} must be one of A to H")
    here = f"{where}: variant {key}"
    unknown = sorted(set(item) - {"key", "text", "buttons"})
    if unknown:
        raise CatalogueError(f"{here}: unknown keys {unknown}")
    texts = item.get("text")
    if not isinstance(texts, Mapping):
        raise CatalogueError(f"{here}: 'text' must map languages {LANGUAGES} to strings")
    for language in LANGUAGES:
        value = texts.get(language)
        if not isinstance(value, str) or not value.strip():
            raise CatalogueError(f"{here}: text.{language} must be a non-empty string, got {value!r}")
        _check_length(value, where=f"{here}: text.{language}")
    return FollowupVariant(key, texts["en"].strip(), texts["zh"].strip(), _parse_buttons(item, where=here))


def _parse_buttons(item: Mapping[str, Any], *, where: str) -> tuple[VariantButton, ...]:
    """Buttons as broadcast experiments have them: `{text}` (a tracked callback) or `{text, url}`."""
    raw = item.get("buttons", [])
    if not isinstance(raw, list) or len(raw) > MAX_BUTTONS:
        raise CatalogueError(f"{where}: 'buttons' must list at most {MAX_BUTTONS} buttons, got {raw!r}")
    buttons = []
    for button in raw:
        if not isinstance(button, Mapping) or set(button) - {"text", "url"}:
            raise CatalogueError(f"{where}: a button must be {{text: ..., url: ...}}, got {button!r}")
        label, url = button.get("text"), button.get("url")
        if not isinstance(label, str) or not label.strip() or len(label) > MAX_BUTTON_TEXT:
            raise CatalogueError(
                f"{where}: a button label needs 1 to {MAX_BUTTON_TEXT} characters, got {label!r}"
            )
        if url is not None and (
            not isinstance(url, str) or not url.startswith(("https://", "http://", "tg://"))
        ):
            raise CatalogueError(f"{where}: button URL {url!r} must start with https://")
        buttons.append(VariantButton(label.strip(), url))
    return tuple(buttons)


def _string_list(value: Any, *, where: str, key: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(item, str) and item for item in value):
        raise CatalogueError(f"{where}: '{key}' must be a list of non-empty strings, got {value!r}")
    return list(value)
