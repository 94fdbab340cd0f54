"""Readers for Rasa 3.x NLU YAML and ``text,intent`` CSV: ``read(path)`` reads, ``reads(text)`` parses."""

from __future__ import annotations

import csv
import io
import json
import logging
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

import yaml

from nlu.errors import TrainingDataError
from nlu.training_data import (
    EntityAnnotation,
    Example,
    LookupTable,
    RegexPattern,
    TrainingData,
    sanitize,
    validate,
)

logger = logging.getLogger(__name__)

# Rasa's entity markup: [text](entity), [text](entity:value) and [text]{"entity": ..., ...}.
_ENTITY_MARKUP = re.compile(
    r"\[(?P<text>[^\]]+?)\](?:\((?P<entity>[^:)]+?)(?::(?P<value>[^)]+))?\)|(?P<dict>\{[^}]+?\}))"
)
_YAML_SUFFIXES = {".yml", ".yaml"}
_SECTION_KEYS = ("intent", "synonym", "regex", "lookup")


def parse_example(text: str, intent: str, source: str) -> tuple[Example, dict[str, str]]:
    """Strip entity markup from one example; return the example and the synonyms its annotations declare.

    Raises:
        TrainingDataError: malformed ``{...}`` annotation; the message names ``source``.
    """
    plain: list[str] = []
    annotations: list[EntityAnnotation] = []
    synonyms: dict[str, str] = {}
    cursor = 0
    length = 0
    for match in _ENTITY_MARKUP.finditer(text):
        before = text[cursor : match.start()]
        plain.append(before)
        length += len(before)
        surface = match.group("text")
        role: str | None = None
        if match.group("dict") is not None:
            try:
                spec = json.loads(match.group("dict"))
            except json.JSONDecodeError as exc:
                raise TrainingDataError(
                    f"{source}: bad entity annotation {match.group(0)!r}: {exc.msg}"
                ) from exc
            if not isinstance(spec, dict) or not isinstance(spec.get("entity"), str):
                raise TrainingDataError(
                    f"{source}: entity annotation {match.group(0)!r} needs an 'entity' key"
                )
            name = spec["entity"]
            value = str(spec.get("value", surface))
            role = str(spec["role"]) if spec.get("role") is not None else None
        else:
            name = match.group("entity").strip()
            value = (match.group("value") or surface).strip()
        if value != surface:
            synonyms[surface.lower()] = value
        annotations.append(EntityAnnotation(name, length, length + len(surface), value, role))
        plain.append(surface)
        length += len(surface)
        cursor = match.end()
    plain.append(text[cursor:])
    return Example("".join(plain).strip(), intent, tuple(annotations), source), synonyms


def _node_value(node: yaml.Node, where: str) -> str:
    if not isinstance(node, yaml.ScalarNode):
        raise TrainingDataError(f"{where}: expected a text value, found a {type(node).__name__}")
    return str(node.value)


def _example_lines(node: yaml.Node, path: str) -> list[tuple[str, str]]:
    """The ``(text, file:line)`` pairs of an ``examples:`` value (block text or a list of ``text:`` maps)."""
    if isinstance(node, yaml.SequenceNode):
        items: list[tuple[str, str]] = []
        for item in node.value:
            where = f"{path}:{item.start_mark.line + 1}"
            if isinstance(item, yaml.MappingNode):
                fields = {_node_value(k, where): v for k, v in item.value}
                if "text" not in fields:
                    raise TrainingDataError(f"{where}: example needs a 'text' key")
                items.append((_node_value(fields["text"], where), where))
            else:
                items.append((_node_value(item, where), where))
        return items
    where = f"{path}:{node.start_mark.line + 1}"
    block = _node_value(node, where)
    first_line = node.start_mark.line + (1 if getattr(node, "style", None) in ("|", ">") else 0)
    items = []
    for offset, line in enumerate(block.splitlines()):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        line_where = f"{path}:{first_line + offset + 1}"
        if not stripped.startswith("-"):
            raise TrainingDataError(f"{line_where}: example must start with '- ', got {stripped!r}")
        items.append((stripped[1:].strip(), line_where))
    return items


def reads_yaml(content: str, *, path: str = "<string>") -> TrainingData:
    """Parse Rasa 3.x NLU YAML text.

    Raises:
        TrainingDataError: YAML syntax errors and out-of-shape items, with ``path:line``.
    """
    try:
        root = yaml.compose(content, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 0
        raise TrainingDataError(f"{path}:{line}: YAML error: {exc.problem or exc}") from exc
    except yaml.YAMLError as exc:
        raise TrainingDataError(f"{path}: YAML error: {exc}") from exc
    if root is None:
        return TrainingData()
    if not isinstance(root, yaml.MappingNode):
        raise TrainingDataError(f"{path}:{root.start_mark.line + 1}: top level must be a mapping")
    top = {_node_value(k, path): v for k, v in root.value}
    version = top.get("version")
    if version is not None and not str(version.value).startswith("3"):
        logger.warning("%s: training data version %r is not 3.x; reading it as 3.x", path, version.value)
    nlu_node = top.get("nlu")
    if nlu_node is None:
        return TrainingData()
    if not isinstance(nlu_node, yaml.SequenceNode):
        raise TrainingDataError(f"{path}:{nlu_node.start_mark.line + 1}: 'nlu' must be a list of items")
    examples: list[Example] = []
    regexes: list[RegexPattern] = []
    lookups: list[LookupTable] = []
    synonyms: dict[str, str] = {}
    for item in nlu_node.value:
        where = f"{path}:{item.start_mark.line + 1}"
        if not isinstance(item, yaml.MappingNode):
            raise TrainingDataError(f"{where}: each 'nlu' item must be a mapping")
        fields = {_node_value(k, where): v for k, v in item.value}
        kinds = [key for key in _SECTION_KEYS if key in fields]
        if len(kinds) != 1:
            raise TrainingDataError(f"{where}: item needs exactly one of {', '.join(_SECTION_KEYS)}")
        kind = kinds[0]
        name = _node_value(fields[kind], where).strip()
        if not name:
            raise TrainingDataError(f"{where}: empty {kind} name")
        if "examples" not in fields:
            raise TrainingDataError(f"{where}: {kind} {name!r} has no 'examples'")
        lines = _example_lines(fields["examples"], path)
        if kind == "intent":
            for text, line_where in lines:
                example, found = parse_example(text, name, line_where)
                examples.append(example)
                synonyms.update(found)
        elif kind == "synonym":
            synonyms.update({text.lower(): name for text, _ in lines})
        elif kind == "regex":
            for text, line_where in lines:
                try:
                    re.compile(text)
                except re.error as exc:
                    raise TrainingDataError(f"{line_where}: bad regex {text!r} for {name!r}: {exc}") from exc
                regexes.append(RegexPattern(name, text, line_where))
        else:
            lookups.append(LookupTable(name, tuple(text for text, _ in lines if text), where))
    return TrainingData(tuple(examples), tuple(regexes), tuple(lookups), synonyms)


# Intent-classification data sets name the label column differently (CLINC150 and Rasa's own
# exports `intent`, many others `label` or `category`); the first one present is used.
_CSV_INTENT_COLUMNS = ("intent", "label", "category")


def reads_csv(content: str, *, path: str = "<string>") -> TrainingData:
    """Parse ``text,intent`` CSV (header required; CLINC150's ``oos`` label becomes ``out_of_scope``).

    Column names are matched case-insensitively; ``label`` or ``category`` may stand for ``intent``.

    Raises:
        TrainingDataError: missing columns or an empty intent, with ``path:line``.
    """
    reader = csv.DictReader(io.StringIO(content))
    columns = reader.fieldnames or []
    by_name = {(column or "").strip().lower(): column for column in columns}
    text_column = by_name.get("text")
    intent_column = next((by_name[name] for name in _CSV_INTENT_COLUMNS if name in by_name), None)
    if text_column is None or intent_column is None:
        raise TrainingDataError(
            f"{path}:1: CSV header must name a 'text' column and an 'intent' (or 'label') column, "
            f"got {columns!r}"
        )
    examples: list[Example] = []
    synonyms: dict[str, str] = {}
    for row in reader:
        where = f"{path}:{reader.line_num}"
        intent = (row.get(intent_column) or "").strip()
        if not intent:
            raise TrainingDataError(f"{where}: empty intent for text {row.get(text_column)!r}")
        if intent == "oos":
            intent = "out_of_scope"
        example, found = parse_example(row.get(text_column) or "", intent, where)
        examples.append(example)
        synonyms.update(found)
    return TrainingData(examples=tuple(examples), synonyms=synonyms)


def read(path: Path) -> TrainingData:
    """Read one training file, choosing the format by its suffix.

    Raises:
        TrainingDataError: unreadable file, unknown suffix, or bad content.
    """
    suffix = path.suffix.lower()
    if suffix not in _YAML_SUFFIXES and suffix != ".csv":
        raise TrainingDataError(f"{path}: unknown training data format {suffix!r} (use .yml, .yaml or .csv)")
    try:
        content = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise TrainingDataError(f"{path}: cannot read training data: {exc}") from exc
    if suffix == ".csv":
        return reads_csv(content, path=str(path))
    return reads_yaml(content, path=str(path))


def _expand(paths: Iterable[Path]) -> list[Path]:
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            found = sorted(
                p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in {*_YAML_SUFFIXES, ".csv"}
            )
            files.extend(found)
        elif path.is_file():
            files.append(path)
        else:
            raise TrainingDataError(f"{path}: no such file or directory")
    return files


def load_training_data(paths: Sequence[Path] | Path) -> TrainingData:
    """Read several files and folders (recursively) into one sanitised data set, and log warnings.

    YAML files without an ``nlu:`` section (a domain or stories file in a Rasa project) add nothing.

    Raises:
        TrainingDataError: a missing path, bad content, or no examples at all.
    """
    targets = [paths] if isinstance(paths, Path) else list(paths)
    data = TrainingData()
    for file in _expand(targets):
        data = data.merge(read(file))
    if not data.examples:
        raise TrainingDataError(f"no intent examples found in {', '.join(str(p) for p in targets)}")
    data = TrainingData(sanitize(data.examples), data.regexes, data.lookups, data.synonyms)
    validate(data)
    return data
