"""Grouping texts by meaning with the sentence encoder, and the nearest known intent of each group.

The dashboard's Questions page turns hundreds of unanswered messages into a few groups a manager
can act on: "do you ship to Mars?", "can you deliver to mars" and "你们送货到火星吗" are one question.
Texts are embedded with the NLU's sentence encoder (USE multilingual v3, NumPy: no TensorFlow), so
English and Chinese paraphrases land near each other, and grouped by average-linkage agglomerative
clustering on cosine distance, cut where groups stop being alike (``min_similarity``).

Average linkage needs all pairwise distances: memory and time grow with the square of the number of
texts, so callers bound it (``MAX_TEXTS``; the dashboard groups the most recent questions only).
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy.cluster.hierarchy import fcluster, linkage
from scipy.spatial.distance import squareform

from nlu.encoder import USE_MULTILINGUAL_V3, FloatArray, SentenceEncoder, get_encoder
from nlu.featurizer import normalize

logger = logging.getLogger(__name__)

DEFAULT_MIN_SIMILARITY = 0.5
MAX_TEXTS = 5000


@dataclass(frozen=True)
class NearestIntent:
    """The known intent whose training examples lie closest to a group, and how close (cosine)."""

    intent: str
    similarity: float


def group_by_meaning(
    vectors: FloatArray, *, min_similarity: float = DEFAULT_MIN_SIMILARITY
) -> list[list[int]]:
    """Row indices of ``vectors`` grouped so that members are on average at least ``min_similarity`` alike.

    Groups come largest first, members in row order; ties between groups of one size keep the order of
    their first member. ``vectors`` are L2-normalised sentence embeddings.

    Raises:
        ValueError: ``min_similarity`` outside (-1, 1], or more than ``MAX_TEXTS`` rows.
    """
    if not -1.0 < min_similarity <= 1.0:
        raise ValueError(f"min_similarity={min_similarity} must lie in (-1, 1]")
    n = len(vectors)
    if n > MAX_TEXTS:
        raise ValueError(f"{n} texts to group; at most MAX_TEXTS={MAX_TEXTS} (sample the most recent)")
    if n == 0:
        return []
    if n == 1:
        return [[0]]
    # Cosine distances of unit vectors from one matrix product (BLAS), about twice as fast as scipy's
    # pdist, worked in place: at 5,000 texts each full copy is 100 MB. squareform without checks
    # takes the upper triangle, so the rounding asymmetry and the diagonal do not matter; distances
    # rounded a hair below zero are clipped.
    unit = np.asarray(vectors, dtype=np.float32)
    distances = unit @ unit.T
    np.subtract(1.0, distances, out=distances)
    condensed = squareform(distances, checks=False).astype(np.float64)
    del distances
    np.maximum(condensed, 0.0, out=condensed)
    tree = linkage(condensed, method="average")
    labels = fcluster(tree, t=1.0 - min_similarity, criterion="distance")
    groups: dict[int, list[int]] = {}
    for row, label in enumerate(labels.tolist()):
        groups.setdefault(int(label), []).append(row)
    return sorted(groups.values(), key=lambda members: (-len(members), members[0]))


def centroid(vectors: FloatArray) -> FloatArray:
    """The L2-normalised mean of ``vectors`` (rows), the direction a group points in."""
    mean = np.asarray(vectors, dtype=np.float32).mean(axis=0)
    norm = float(np.linalg.norm(mean))
    result: FloatArray = mean / norm if norm > 0 else mean
    return result


def nearest_intents(
    centroids: FloatArray, example_vectors: FloatArray, example_intents: Sequence[str]
) -> list[NearestIntent | None]:
    """For each centroid, the intent of the most similar training example and that similarity.

    The closest single example, not the intent's mean, so that an intent with varied examples still
    matches the one kind of question it covers. None for every row when there are no examples.
    """
    if len(example_intents) != len(example_vectors):
        raise ValueError(f"{len(example_vectors)} example vectors but {len(example_intents)} intents")
    if len(example_intents) == 0:
        return [None] * len(centroids)
    similarity = np.asarray(centroids, dtype=np.float32) @ np.asarray(example_vectors, dtype=np.float32).T
    best = similarity.argmax(axis=1)
    return [
        NearestIntent(example_intents[int(column)], float(similarity[row, column]))
        for row, column in enumerate(best.tolist())
    ]


class EmbeddingCache:
    """Sentence embeddings of texts, computed once each (per process) and kept for the most recent.

    The encoder is loaded on first use (about half a second, ~80 MB), not when the cache is built, so
    a page that never groups questions never pays for it. Thread-safe; texts are normalised as the
    NLU normalises them before encoding, so the vectors match the ones training uses.
    """

    def __init__(
        self,
        *,
        max_entries: int = 50_000,
        encoder: Callable[[], SentenceEncoder] | None = None,
    ) -> None:
        self.max_entries = max_entries
        self._encoder_factory = encoder or (lambda: get_encoder(USE_MULTILINGUAL_V3))
        self._vectors: OrderedDict[str, npt.NDArray[np.float32]] = OrderedDict()
        self._lock = threading.Lock()
        self.encoded = 0  # texts this cache has sent to the encoder (benchmarks and tests read it)

    def embed(self, texts: Sequence[str]) -> FloatArray:
        """One row per text, in order; only texts not seen before are encoded (in one batch)."""
        keys = [normalize(text) for text in texts]
        with self._lock:
            missing = list(dict.fromkeys(key for key in keys if key not in self._vectors))
        if missing:
            vectors = self._encoder_factory().encode(missing)
            with self._lock:
                self.encoded += len(missing)
                for key, vector in zip(missing, vectors, strict=True):
                    self._vectors[key] = vector
        with self._lock:
            rows = []
            for key in keys:
                vector = self._vectors.get(key)
                if vector is None:  # evicted by a concurrent call between the two steps: encode again
                    vector = self._encoder_factory().encode([key])[0]
                    self._vectors[key] = vector
                self._vectors.move_to_end(key)
                rows.append(vector)
            while len(self._vectors) > self.max_entries:
                self._vectors.popitem(last=False)
        if not rows:
            return np.zeros((0, 0), dtype=np.float32)
        return np.vstack(rows).astype(np.float32, copy=False)
