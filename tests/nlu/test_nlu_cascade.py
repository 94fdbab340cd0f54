"""The cascade (the n-gram head answers alone when sure) and the micro-batched ``aparse``."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence

import numpy as np
import pytest
from numpy.typing import NDArray

from nlu import NLUModel, TrainingConfig
from nlu.batching import MicroBatcher
from nlu.classifier import NEVER_SKIP, IntentClassifier, softmax
from nlu.training import _choose_skip_confidence


def _classifier(skip_confidence: float) -> IntentClassifier:
    return IntentClassifier.from_fitted(
        classes=["a", "b"],
        coef=np.zeros((1, 2), dtype=np.float32),
        intercept=np.zeros(2, dtype=np.float32),
        dense_coef=np.array([[1.0, -1.0]], dtype=np.float32),
        dense_intercept=np.zeros(2, dtype=np.float32),
        temperature=1.0,
        dense_weight=1.0,
        sparse_temperature=1.0,
        skip_confidence=skip_confidence,
    )


def test_cascade_embeds_only_the_unsure_rows() -> None:
    clf = _classifier(skip_confidence=0.9)
    sparse_scores = np.array([[5.0, 0.0], [0.1, 0.0], [0.0, 4.0]], dtype=np.float32)  # sure, unsure, sure
    asked: list[list[int]] = []

    def embed(rows: NDArray[np.intp]) -> NDArray[np.float32]:
        asked.append(rows.tolist())
        return np.full((len(rows), 1), -3.0, dtype=np.float32)  # the head says "b" for them

    proba = clf.cascade_proba(sparse_scores, embed)
    assert asked == [[1]]
    np.testing.assert_allclose(proba[[0, 2]], softmax(sparse_scores[[0, 2]], 1.0), rtol=1e-6)
    np.testing.assert_allclose(proba[1], softmax(np.array([[0.1 - 3.0, 0.0 + 3.0]]), 1.0)[0], rtol=1e-5)
    never = _classifier(skip_confidence=NEVER_SKIP)
    asked.clear()
    never.cascade_proba(sparse_scores, embed)
    assert asked == [[0, 1, 2]]


def test_skip_confidence_is_the_lowest_that_keeps_accuracy() -> None:
    clf = _classifier(skip_confidence=NEVER_SKIP)
    labels = ["a", "a", "b", "b"]
    # the SVM alone is sure and right on rows 0 and 2, sure (0.88) but wrong on row 1, unsure on row 3
    sparse_scores = np.array([[4.0, 0.0], [0.0, 2.0], [0.0, 4.0], [0.1, 0.0]], dtype=np.float32)
    full_proba = np.array([[0.9, 0.1], [0.8, 0.2], [0.1, 0.9], [0.2, 0.8]], dtype=np.float32)
    config = TrainingConfig(skip_confidence_grid=(0.8, 0.9, 0.95), max_cascade_accuracy_drop=0.0)
    threshold, share = _choose_skip_confidence(config, clf, sparse_scores, full_proba, labels)
    assert threshold == 0.9 and share == 0.5
    nothing_works = TrainingConfig(skip_confidence_grid=(0.5,), max_cascade_accuracy_drop=0.0)
    assert _choose_skip_confidence(nothing_works, clf, sparse_scores, full_proba, labels) == (NEVER_SKIP, 0.0)


def test_default_model_skips_the_encoder_when_sure_and_batches_agree(default_model: NLUModel) -> None:
    clf = default_model.classifier
    assert clf.uses_embeddings and clf.skip_confidence <= 1.0
    texts = ["hello", "how much is the pro plan", "专业版多少钱", "the cat sat on the mat near the river"]
    single = [default_model.parse(text) for text in texts]
    batch = default_model.parse_batch(texts)
    for one, many in zip(single, batch, strict=True):
        assert one.intent.name == many.intent.name
        assert [s.name for s in one.intent_ranking] == [s.name for s in many.intent_ranking]
        assert one.intent.confidence == pytest.approx(many.intent.confidence, abs=1e-4)
    sure = default_model._parse_one("hello", encode=False)
    assert sure is not None and sure == single[0]
    assert default_model._parse_one(texts[3], encode=False) is None  # off-topic: both heads needed


async def test_aparse_matches_parse_and_batches_concurrent_messages(default_model: NLUModel) -> None:
    texts = [f"what does the pro plan cost for {n} seats, honestly?" for n in range(12)]
    texts += ["the cat sat on the mat near the river", "hello"]
    results = await asyncio.gather(*(default_model.aparse(text) for text in texts))
    for text, result in zip(texts, results, strict=True):
        expected = default_model.parse(text)
        assert result.text == text and result.intent.name == expected.intent.name
        assert result.intent.confidence == pytest.approx(expected.intent.confidence, abs=1e-4)
    long_text = "pricing " * 200
    assert (await default_model.aparse(long_text)).intent.name == default_model.parse(long_text).intent.name
    with pytest.raises(TypeError, match="must be a string"):
        await default_model.aparse(42)  # type: ignore[arg-type]


class _Recorder:
    """A batch function that records its batches and can be held until released."""

    def __init__(self) -> None:
        self.batches: list[list[str]] = []
        self.release = threading.Event()

    def __call__(self, texts: Sequence[str]) -> list[str]:
        self.release.wait(5)
        self.batches.append(list(texts))
        if "boom" in texts:
            raise RuntimeError("encoder exploded")
        return [text.upper() for text in texts]


async def test_micro_batcher_groups_waiting_requests_and_keeps_order() -> None:
    recorder = _Recorder()
    batcher = MicroBatcher(recorder, max_batch=4)
    first = asyncio.ensure_future(batcher.submit("a"))
    await asyncio.sleep(0.05)  # the worker is now holding "a"
    rest = [asyncio.ensure_future(batcher.submit(t)) for t in "bcdefg"]
    await asyncio.sleep(0)
    recorder.release.set()
    assert await first == "A"
    assert [await task for task in rest] == list("BCDEFG")
    assert recorder.batches == [["a"], ["b", "c", "d", "e"], ["f", "g"]]
    batcher.close()
    assert await batcher.submit("again") == "AGAIN"  # a closed batcher starts a new worker
    batcher.close()


async def test_micro_batcher_hands_errors_to_every_caller_of_the_batch() -> None:
    recorder = _Recorder()
    batcher = MicroBatcher(recorder)
    recorder.release.set()
    outcomes = await asyncio.gather(batcher.submit("boom"), return_exceptions=True)
    assert isinstance(outcomes[0], RuntimeError) and "exploded" in str(outcomes[0])
    assert await batcher.submit("fine") == "FINE"  # the worker survived
    batcher.close()


async def test_a_cancelled_caller_does_not_break_the_batcher() -> None:
    recorder = _Recorder()
    batcher = MicroBatcher(recorder)
    task = asyncio.ensure_future(batcher.submit("slow"))
    await asyncio.sleep(0.05)
    task.cancel()
    recorder.release.set()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await batcher.submit("next") == "NEXT"
    batcher.close()
