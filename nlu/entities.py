"""Entity extraction from regexes, lookup tables and annotated values, with synonym mapping."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from nlu.errors import ModelLoadError
from nlu.results import Entity
from nlu.training_data import TrainingData

REGEX_EXTRACTOR = "RegexEntityExtractor"
# A word character that is not CJK: a lookup term such as "pro" must not match inside "product",
# but "专业版" may sit right next to other Chinese characters.
_LATIN_WORD = r"[^\W\u3040-\u30ff\u3400-\u9fff\uf900-\ufaff\uac00-\ud7af]"


@dataclass(frozen=True)
class _Pattern:
    entity: str
    regex: re.Pattern[str]
    role: str | None


def _literal_pattern(term: str) -> str:
    escaped = re.escape(term)
    before = f"(?<!{_LATIN_WORD})" if re.match(_LATIN_WORD, term[0]) else ""
    after = f"(?!{_LATIN_WORD})" if re.match(_LATIN_WORD, term[-1]) else ""
    return before + escaped + after


class EntityExtractor:
    """Rasa's RegexEntityExtractor plus EntitySynonymMapper, in one pass over the text.

    Patterns come from ``regex:`` items, ``lookup:`` tables and the values annotated in examples
    (``[pro](plan)`` teaches that "pro" is a ``plan``). Overlapping matches keep the longest, then the
    earliest. Offsets index the original text, so ``text[start:end]`` is the matched surface.
    """

    def __init__(self, *, use_annotations: bool = True) -> None:
        self.use_annotations = use_annotations

    def fit(self, data: TrainingData) -> EntityExtractor:
        """Collect the patterns and synonyms of ``data``."""
        regexes: list[tuple[str, str, str | None]] = [(r.name, r.pattern, None) for r in data.regexes]
        literals: dict[tuple[str, str | None], set[str]] = {}
        # A literal found in any letter case maps to the form the data spells it in ("PRO" -> "pro").
        canonical: dict[str, str] = {}
        for table in data.lookups:
            canonical.update({e.strip().lower(): e.strip() for e in table.elements if e.strip()})
            literals.setdefault((table.name, None), set()).update(
                e.strip() for e in table.elements if e.strip()
            )
        if self.use_annotations:
            for example in data.examples:
                for note in example.entities:
                    surface = example.text[note.start : note.end].strip()
                    if surface:
                        literals.setdefault((note.entity, note.role), set()).add(surface)
                        canonical.setdefault(surface.lower(), note.value)
        for (entity, role), terms in sorted(literals.items(), key=lambda kv: (kv[0][0], kv[0][1] or "")):
            ordered = sorted(terms, key=lambda t: (-len(t), t))
            regexes.append((entity, "|".join(_literal_pattern(t) for t in ordered), role))
        self.patterns_: list[tuple[str, str, str | None]] = regexes
        self.synonyms_: dict[str, str] = {**canonical, **data.synonyms}
        self._compile()
        return self

    def _compile(self) -> None:
        self._compiled = [_Pattern(e, re.compile(p, re.IGNORECASE), r) for e, p, r in self.patterns_]

    def extract(self, text: str) -> tuple[Entity, ...]:
        """All non-overlapping entities in ``text``, sorted by position."""
        if not hasattr(self, "_compiled"):
            return ()
        found: list[tuple[int, int, str, str | None]] = []
        for pattern in self._compiled:
            for match in pattern.regex.finditer(text):
                if match.end() > match.start():
                    found.append((match.start(), match.end(), pattern.entity, pattern.role))
        found.sort(key=lambda f: (-(f[1] - f[0]), f[0]))
        taken: list[tuple[int, int, str, str | None]] = []
        for candidate in found:
            if all(candidate[1] <= s or candidate[0] >= e for s, e, _, _ in taken):
                taken.append(candidate)
        taken.sort(key=lambda f: f[0])
        entities = []
        for start, end, entity, role in taken:
            surface = text[start:end]
            value = self.synonyms_.get(surface.lower(), surface)
            entities.append(Entity(entity, start, end, value, 1.0, REGEX_EXTRACTOR, role))
        return tuple(entities)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready state (patterns and synonyms)."""
        return {"patterns": [list(p) for p in self.patterns_], "synonyms": self.synonyms_}

    @classmethod
    def from_dict(cls, state: dict[str, Any]) -> EntityExtractor:
        """Rebuild from :meth:`to_dict` output.

        Raises:
            ModelLoadError: the state is out of shape or holds a regex that does not compile.
        """
        extractor = cls()
        try:
            extractor.patterns_ = [
                (str(e), str(p), None if r is None else str(r)) for e, p, r in state["patterns"]
            ]
            extractor.synonyms_ = {str(k): str(v) for k, v in state["synonyms"].items()}
            extractor._compile()
        except (KeyError, TypeError, ValueError, re.error) as exc:
            raise ModelLoadError(f"entity extractor state is damaged: {exc}") from exc
        return extractor
