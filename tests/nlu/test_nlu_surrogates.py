"""A lone surrogate in one message fails nobody: cleaned before the encoder, batches retried one by one."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence

import numpy as np

from nlu import NLUModel
from nlu.batching import MicroBatcher
from nlu.encoder import USE_MULTILINGUAL_V3, get_encoder
from nlu.featurizer import clean_text

LONE = "\ud800"


def test_clean_text_replaces_lone_surrogates_and_joins_pairs() -> None:
    assert clean_text("plain text, 专业版") == "plain text, 专业版"
    assert clean_text(f"a{LONE}b") == "a\ufffdb"
    assert clean_text("\udfff") == "\ufffd"
    assert clean_text("\ud83d\ude00!") == "\U0001f600!"
    clean_text(f"x{LONE}").encode("utf-8")  # encodable now


def test_the_encoder_takes_a_lone_surrogate() -> None:
    encoder = get_encoder(USE_MULTILINGUAL_V3)
    vectors = encoder.encode(["hello", f"hello {LONE} there", "bye"])
    assert vectors.shape == (3, encoder.dimension)
    np.testing.assert_allclose(vectors[0], encoder.encode(["hello"])[0], rtol=1e-5, atol=1e-6)


def test_parse_of_a_lone_surrogate_is_defined_and_serialisable(default_model: NLUModel) -> None:
    for result in (default_model.parse(f"pricing {LONE}"), *default_model.parse_batch([LONE, f"hi{LONE}"])):
        assert "\ufffd" in result.text and LONE not in result.text
        json.dumps(result.to_rasa(), ensure_ascii=False).encode("utf-8")


async def test_concurrent_callers_survive_one_lone_surrogate(default_model: NLUModel) -> None:
    # Off-topic texts need the sentence encoder, so they all go through one batcher.
    texts = [f"the cat number {n} sat on the mat near the river" for n in range(41)]
    texts.insert(17, f"the cat sat on the mat {LONE} near the river")
    results = await asyncio.gather(*(default_model.aparse(t) for t in texts), return_exceptions=True)
    failures = [r for r in results if isinstance(r, BaseException)]
    assert failures == []
    for text, result in zip(texts, results, strict=True):
        assert not isinstance(result, BaseException)
        assert result.text == clean_text(text)
        assert result.intent.name == default_model.parse(text).intent.name


class _PoisonedBatch:
    """A batch function that fails any batch containing "poison" (as the encoder failed)."""

    def __init__(self) -> None:
        self.batches: list[list[str]] = []

    def __call__(self, texts: Sequence[str]) -> list[str]:
        self.batches.append(list(texts))
        if "poison" in texts:
            raise RuntimeError("Unable to cast Python instance")
        return [text.upper() for text in texts]


async def test_a_failed_batch_is_parsed_one_by_one_so_only_the_bad_item_fails() -> None:
    batch_fn = _PoisonedBatch()
    batcher = MicroBatcher(batch_fn, max_batch=64)
    texts = [f"user {n}" for n in range(20)]
    texts.insert(7, "poison")
    outcomes = await asyncio.gather(*(batcher.submit(t) for t in texts), return_exceptions=True)
    for text, outcome in zip(texts, outcomes, strict=True):
        if text == "poison":
            assert isinstance(outcome, RuntimeError) and "cast" in str(outcome)
        else:
            assert outcome == text.upper()
    assert ["poison"] in batch_fn.batches  # it was retried alone
    assert await batcher.submit("later") == "LATER"
    batcher.close()
