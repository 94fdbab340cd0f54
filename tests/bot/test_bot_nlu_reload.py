"""The running bot picks up a model the dashboard activated, and the dashboard's topics."""

from __future__ import annotations

import logging
from pathlib import Path
from types import SimpleNamespace

import pytest

import bot.nlu_reload as nlu_reload
from bot.app import default_knowledge, deployment_data
from bot.knowledge import load_knowledge_base, with_topics
from bot.nlu_reload import ModelReloader
from bot.understanding import Understander
from nlu import NLUModel, TrainingConfig, save_model, train
from nlu.additions import NewTopic
from nlu.training_data import Example, TrainingData
from store import load_settings

FAST = TrainingConfig(sentence_encoder=None, c_grid=(1.0,))
TOPICS = """topics:
  shipping_to_mars:
    title: {en: "Shipping to Mars", zh: "寄往火星"}
    answer: {en: "Not yet.", zh: "暂时不行。"}
  pricing:
    title: {en: "Overridden?", zh: "?"}
    answer: {en: "must not replace the main file's answer", zh: "?"}
"""


def _model(intents: dict[str, list[str]]) -> NLUModel:
    examples = tuple(Example(text, intent) for intent, texts in intents.items() for text in texts)
    return train(TrainingData(examples), config=FAST)


BASE = {
    "greet": ["hi", "hello", "hey there", "good morning", "hello bot", "hey"],
    "pricing": ["how much", "price please", "what does it cost", "pricing", "cost per month", "pricey?"],
}


def test_dashboard_topics_are_added_and_never_override_the_main_file(tmp_path: Path) -> None:
    path = tmp_path / "topics.yml"
    kb = load_knowledge_base()
    assert with_topics(kb, path) is kb  # no file: unchanged
    path.write_text(TOPICS, encoding="utf-8")
    merged = with_topics(kb, path)
    assert merged.topics["shipping_to_mars"].answer_in("zh") == "暂时不行。"
    assert merged.topics["pricing"] == kb.topics["pricing"]
    assert set(merged.topics) == {*kb.topics, "shipping_to_mars"}


def test_the_bot_trains_on_the_accepted_examples_and_reads_the_topics(tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path)
    data = deployment_data(settings)
    assert data.training_paths() == list(data.base_paths) and data.base_paths  # the bundled files
    data.directory.mkdir(parents=True)
    data.accepted_path.write_text(
        'version: "3.1"\nnlu:\n- intent: pricing\n  examples: |\n    - how pricey\n', encoding="utf-8"
    )
    assert data.training_paths()[-1] == tmp_path / "nlu" / "accepted.yml"
    assert data.pending_path not in data.training_paths()  # pending examples wait for validation
    data.create_topic(
        NewTopic("shipping_to_mars", {"en": "Mars", "zh": "火星"}, {"en": "No.", "zh": "不。"}),
        ["do you ship to mars", "deliver to mars"],
    )
    assert default_knowledge(settings).topic("shipping_to_mars") is not None


async def test_the_reloader_swaps_in_a_new_model_and_keeps_a_broken_one_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(nlu_reload, "_RETIRE_AFTER_S", 0.0)
    model_dir, topics = tmp_path / "model", tmp_path / "nlu" / "topics.yml"
    first = _model(BASE)
    save_model(first, model_dir)
    services = SimpleNamespace(understander=Understander(first), knowledge=load_knowledge_base())
    reloader = ModelReloader(
        services,  # type: ignore[arg-type]
        model_dir=model_dir,
        topics_path=topics,
        knowledge_base=None,
    )
    assert await reloader.check() is False  # nothing changed since it started
    second = _model({**BASE, "shipping_to_mars": ["ship to mars", "deliver to mars", "mars delivery"]})
    save_model(second, model_dir)
    topics.parent.mkdir(parents=True)
    topics.write_text(TOPICS, encoding="utf-8")
    assert await reloader.check() is True
    parser = services.understander.parser
    assert isinstance(parser, NLUModel) and "shipping_to_mars" in parser.labels
    assert services.knowledge.topic("shipping_to_mars") is not None
    assert (await services.understander.understand("can you ship to mars")).intent == "shipping_to_mars"

    (model_dir / "metadata.json").write_text("{not json", encoding="utf-8")
    with caplog.at_level(logging.WARNING, logger="bot.nlu_reload"):
        assert await reloader.check() is False
    assert services.understander.parser is parser  # the running model stays
    assert "kept the running NLU model" in caplog.text
    assert reloader.reloads == 1
