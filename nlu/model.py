"""The trained NLU model: featurizer, sentence encoder, classifier, fallback policy and entity extractor
behind ``parse``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from nlu.batching import MicroBatcher
from nlu.classifier import FloatArray, IntentClassifier
from nlu.encoder import SentenceEncoder
from nlu.entities import EntityExtractor
from nlu.fallback import FallbackPolicy
from nlu.featurizer import TextFeaturizer, clean_text, normalize
from nlu.results import FALLBACK_INTENT, RANKING_LENGTH, Entity, IntentParser, IntentScore, ParseResult

INLINE_PARSE_CHARS = 512  # longer messages always go to the worker thread


class NLUModel(IntentParser):
    """A fitted pipeline that answers like Rasa's ``/model/parse``; implements ``IntentParser``.

    Build it with :func:`nlu.training.train` or :func:`nlu.storage.load_model`. ``metadata`` holds
    the training-data hash, labels, thresholds and validation metrics that get saved with it.
    ``encoder`` is required exactly when the classifier scores with sentence embeddings.
    """

    def __init__(
        self,
        featurizer: TextFeaturizer,
        classifier: IntentClassifier,
        extractor: EntityExtractor,
        policy: FallbackPolicy,
        metadata: dict[str, Any] | None = None,
        *,
        encoder: SentenceEncoder | None = None,
    ) -> None:
        if classifier.uses_embeddings and encoder is None:
            raise ValueError("this classifier scores with sentence embeddings: pass its encoder")
        self.featurizer = featurizer
        self.classifier = classifier
        self.extractor = extractor
        self.policy = policy
        self.encoder = encoder if classifier.uses_embeddings else None
        self.metadata: dict[str, Any] = dict(metadata or {})
        self._batcher = MicroBatcher(self.parse_batch)

    def _embed(self, texts: Sequence[str]) -> FloatArray | None:
        """Sentence embeddings of ``texts`` (normalised as in training), or None for n-gram-only models."""
        if self.encoder is None:
            return None
        return self.encoder.encode([normalize(text) for text in texts])

    @property
    def labels(self) -> list[str]:
        """The intents the classifier can predict (not its class of generated nonsense)."""
        return [label for label in self.classifier.classes_ if label != FALLBACK_INTENT]

    def _rankings(self, proba: npt.NDArray[np.float32]) -> tuple[list[list[int]], list[list[float]]]:
        """Top class indices and confidences of each row, best first: enough for ``RANKING_LENGTH``
        intents besides the nonsense class."""
        count = min(RANKING_LENGTH + 1, proba.shape[1])
        if count < proba.shape[1]:
            top = np.argpartition(-proba, count - 1, axis=1)[:, :count]
        else:
            top = np.broadcast_to(np.arange(count), proba.shape).copy()
        picked = np.take_along_axis(proba, top, axis=1)
        order = np.argsort(-picked, axis=1, kind="stable")
        top = np.take_along_axis(top, order, axis=1)
        picked = np.take_along_axis(picked, order, axis=1).astype(np.float64)
        return top.tolist(), picked.tolist()

    def _result(
        self, text: str, top: list[int], confidences: list[float], entities: tuple[Entity, ...]
    ) -> ParseResult:
        """The answer for one row: ``nlu_fallback`` when the nonsense class wins or the policy says so.

        The nonsense class (``nlu.nonsense``) never shows in the ranking; its confidence is the
        fallback's when it wins.
        """
        classes = self.classifier.classes_
        scored = [IntentScore(classes[i], c) for i, c in zip(top, confidences, strict=True)]
        ranking = tuple(score for score in scored if score.name != FALLBACK_INTENT)[:RANKING_LENGTH]
        top1 = ranking[0].confidence if ranking else 0.0
        top2 = ranking[1].confidence if len(ranking) > 1 else 0.0
        if scored[0].name == FALLBACK_INTENT or self.policy.is_fallback(top1, top2):
            confidence = scored[0].confidence if scored[0].name == FALLBACK_INTENT else self.policy.threshold
            fallback = IntentScore(FALLBACK_INTENT, confidence)
            return ParseResult(text, fallback, entities, (fallback, *ranking[: RANKING_LENGTH - 1]))
        return ParseResult(text, ranking[0], entities, ranking)

    def _empty(self, text: str) -> ParseResult:
        fallback = IntentScore(FALLBACK_INTENT, 0.0)
        return ParseResult(text, fallback, (), (fallback,))

    def parse(self, text: str) -> ParseResult:
        """Parse one message; blank text gives ``nlu_fallback`` with confidence 0 and no entities.

        Lone UTF-16 surrogates in ``text`` are replaced by U+FFFD, in the result's text too, so that
        every result can be written out as UTF-8 JSON.
        """
        result = self._parse_one(text, encode=True)
        assert result is not None
        return result

    def _parse_one(self, text: str, *, encode: bool) -> ParseResult | None:
        """``parse``; with ``encode=False``, None instead of running the sentence encoder."""
        if not isinstance(text, str):
            raise TypeError(f"text must be a string, got {type(text).__name__}")
        text = clean_text(text)
        if not text.strip():
            return self._empty(text)
        indices, values = self.featurizer.transform_one(text)
        scores = self.classifier.sparse_one(indices, values)[np.newaxis, :]
        proba, unsure = self.classifier.sparse_pass(scores)
        if len(unsure):
            if not encode:
                return None
            proba = self.classifier.combined_proba(scores, self._embed([text]))
        tops, confidences = self._rankings(proba)
        return self._result(text, tops[0], confidences[0], self.extractor.extract(text))

    def parse_batch(self, texts: Sequence[str]) -> list[ParseResult]:
        """Parse many messages in order with one matrix product for the whole batch."""
        for text in texts:
            if not isinstance(text, str):
                raise TypeError(f"texts must be strings, got {type(text).__name__}")
        if not texts:
            return []
        texts = [clean_text(text) for text in texts]
        scores = self.classifier.sparse_scores(self.featurizer.transform(texts))
        proba = self.classifier.cascade_proba(scores, lambda rows: self._embed([texts[i] for i in rows]))
        tops, confidences = self._rankings(proba)
        return [
            self._result(text, tops[row], confidences[row], self.extractor.extract(text))
            if text.strip()
            else self._empty(text)
            for row, text in enumerate(texts)
        ]

    async def aparse(self, text: str) -> ParseResult:
        """``parse`` without holding up the event loop.

        A short message the n-gram head is sure of is answered inline (~0.2 ms, less than a thread
        hop). The rest is parsed in a worker thread, where messages parsed concurrently share one
        sentence-encoder batch (``nlu.batching``).
        """
        if not isinstance(text, str):
            raise TypeError(f"text must be a string, got {type(text).__name__}")
        if len(text) <= INLINE_PARSE_CHARS:
            result = self._parse_one(text, encode=False)
            if result is not None:
                return result
        return await self._batcher.submit(text)

    def close(self) -> None:
        """Stop the background parsing thread (a later ``aparse`` starts it again)."""
        self._batcher.close()
