"""Word and character n-gram TF-IDF features, fitted with scikit-learn and applied without it.

Fitting uses :class:`~sklearn.feature_extraction.text.TfidfVectorizer` with our own analyzers; parsing
applies the same analyzers with plain dictionaries and NumPy, because sklearn's per-call validation
costs more than the whole parse of one message.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import sparse
from sklearn.feature_extraction.text import TfidfVectorizer

from nlu.errors import NotFittedError, TrainingDataError

MAX_FEATURE_CHARS = 2000  # longer messages are classified on their first 2,000 characters
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\ufeff]")
_CJK = "\u3040-\u30ff\u3400-\u9fff\uf900-\ufaff\uac00-\ud7af"
_TOKEN = re.compile(rf"[{_CJK}]|(?:(?![{_CJK}])\w){{2,}}")

FloatArray = npt.NDArray[np.float32]
IntArray = npt.NDArray[np.int32]


_SURROGATE = re.compile("[\ud800-\udfff]")


def clean_text(text: str) -> str:
    """``text`` with lone UTF-16 surrogates replaced by U+FFFD (and split pairs joined).

    A lone surrogate (JSON can carry one as ``"\\ud800"``) is a valid ``str`` but not encodable:
    the sentence encoder's tokenizer and every UTF-8 writer raise on it. Text without surrogates,
    the usual case, is returned as it is.
    """
    if _SURROGATE.search(text) is None:
        return text
    return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


def normalize(text: str) -> str:
    """Fold case, width and control characters so that 'ＡＰＩ\\tkey' and 'api key' look alike."""
    text = unicodedata.normalize("NFKC", text[:MAX_FEATURE_CHARS]).lower()
    return " ".join(_CONTROL.sub(" ", text).split())


def word_ngrams(normalized: str, ngram_range: tuple[int, int]) -> list[str]:
    """Word n-grams; CJK characters count as one-character words (Chinese has no spaces)."""
    tokens = _TOKEN.findall(normalized)
    low, high = ngram_range
    grams: list[str] = tokens[:] if low == 1 else []
    for n in range(max(low, 2), high + 1):
        grams.extend(" ".join(tokens[i : i + n]) for i in range(len(tokens) - n + 1))
    return grams


def char_ngrams(normalized: str, ngram_range: tuple[int, int]) -> list[str]:
    """Character n-grams inside word boundaries (sklearn's ``char_wb``), padded with spaces."""
    low, high = ngram_range
    grams: list[str] = []
    for word in normalized.split():
        padded = f" {word} "
        size = len(padded)
        for n in range(low, min(high, size) + 1):
            grams.extend([padded[i : i + n] for i in range(size - n + 1)])
    return grams


def _fit_block(vectorizer: TfidfVectorizer, texts: Sequence[str]) -> tuple[list[str], FloatArray]:
    """Fit one TF-IDF block; a block with no terms left (tiny or odd data) is empty, not an error."""
    try:
        vectorizer.fit(texts)
    except ValueError:
        return [], np.zeros(0, dtype=np.float32)
    return vectorizer.get_feature_names_out().tolist(), np.asarray(vectorizer.idf_, dtype=np.float32)


class TextFeaturizer:
    """TF-IDF over word (1-2) and char_wb (2-5) n-grams, each block L2-normalised, then stacked.

    Args:
        word_ngram_range: word n-gram sizes.
        char_ngram_range: character n-gram sizes.
        min_df: minimum document frequency of a character n-gram (word n-grams keep ``min_df=1``).
        char_weight: scale of the character block relative to the word block.
    """

    def __init__(
        self,
        *,
        word_ngram_range: tuple[int, int] = (1, 2),
        char_ngram_range: tuple[int, int] = (2, 5),
        min_df: int = 2,
        char_weight: float = 1.0,
    ) -> None:
        self.word_ngram_range = word_ngram_range
        self.char_ngram_range = char_ngram_range
        self.min_df = min_df
        self.char_weight = char_weight

    def _words(self, text: str) -> list[str]:
        return word_ngrams(normalize(text), self.word_ngram_range)

    def _chars(self, text: str) -> list[str]:
        return char_ngrams(normalize(text), self.char_ngram_range)

    def fit(self, texts: Sequence[str]) -> TextFeaturizer:
        """Learn the vocabularies and IDF weights of both blocks."""
        word_vocab, word_idf = _fit_block(TfidfVectorizer(analyzer=self._words, sublinear_tf=True), texts)
        chars = TfidfVectorizer(analyzer=self._chars, sublinear_tf=True, min_df=self.min_df)
        char_vocab, char_idf = _fit_block(chars, texts)
        if not word_vocab and not char_vocab:
            raise TrainingDataError("the training texts have no usable words or characters")
        self._set_vocabulary(word_vocab + char_vocab, len(word_vocab))
        self.idf_: FloatArray = np.concatenate([word_idf, char_idf]).astype(np.float32)
        return self

    def _set_vocabulary(self, terms: list[str], n_word: int) -> None:
        """Word and char blocks keep separate lookup tables: the same string can be in both."""
        self.vocabulary_: list[str] = terms
        self.n_word_features_ = n_word
        self._word_index = {term: i for i, term in enumerate(terms[:n_word])}
        self._char_index = {term: i + n_word for i, term in enumerate(terms[n_word:])}

    def _check_fitted(self) -> None:
        if not hasattr(self, "vocabulary_"):
            raise NotFittedError("TextFeaturizer is not fitted; call fit() or load a model first")

    def _entries(self, texts: Sequence[str]) -> tuple[list[int], IntArray, FloatArray]:
        """CSR pieces (indptr, indices, values): Python collects the counts, NumPy does the maths."""
        self._check_fitted()
        indptr = [0]
        indices: list[int] = []
        counts: list[int] = []
        segments: list[int] = []
        word_range, char_range = self.word_ngram_range, self.char_ngram_range
        word_index, char_index = self._word_index, self._char_index
        for row, text in enumerate(texts):
            normalized = normalize(text)
            for block, grams, index in (
                (0, word_ngrams(normalized, word_range), word_index),
                (1, char_ngrams(normalized, char_range), char_index),
            ):
                for gram, count in Counter(grams).items():
                    position = index.get(gram)
                    if position is not None:
                        indices.append(position)
                        counts.append(count)
                        segments.append(2 * row + block)
            indptr.append(len(indices))
        idx = np.asarray(indices, dtype=np.int32)
        seg = np.asarray(segments, dtype=np.int64)
        values = (1.0 + np.log(np.asarray(counts, dtype=np.float32))) * self.idf_[idx]
        norms = np.sqrt(np.bincount(seg, weights=values * values, minlength=2 * len(texts)))
        scale = np.where(seg % 2 == 0, 1.0, self.char_weight) / norms[seg]
        return indptr, idx, (values * scale).astype(np.float32)

    def transform_one(self, text: str) -> tuple[IntArray, FloatArray]:
        """The non-zero feature indices and values of one text (the fast path of ``parse``)."""
        _, indices, values = self._entries([text])
        return indices, values

    def transform(self, texts: Sequence[str]) -> sparse.csr_matrix:
        """A CSR matrix with one row per text."""
        indptr, indices, values = self._entries(texts)
        return sparse.csr_matrix(
            (values, indices, np.asarray(indptr, dtype=np.int64)),
            shape=(len(texts), len(self.vocabulary_)),
            dtype=np.float32,
        )

    def get_config(self) -> dict[str, Any]:
        """The hyper-parameters, JSON-ready."""
        return {
            "word_ngram_range": list(self.word_ngram_range),
            "char_ngram_range": list(self.char_ngram_range),
            "min_df": self.min_df,
            "char_weight": self.char_weight,
        }

    @classmethod
    def from_state(
        cls, config: dict[str, Any], terms: list[str], idf: FloatArray, n_word: int
    ) -> TextFeaturizer:
        """Rebuild a fitted featurizer from saved JSON/NumPy state (no pickle)."""
        featurizer = cls(
            word_ngram_range=(int(config["word_ngram_range"][0]), int(config["word_ngram_range"][1])),
            char_ngram_range=(int(config["char_ngram_range"][0]), int(config["char_ngram_range"][1])),
            min_df=int(config["min_df"]),
            char_weight=float(config["char_weight"]),
        )
        featurizer._set_vocabulary(list(terms), n_word)
        featurizer.idf_ = np.asarray(idf, dtype=np.float32)
        return featurizer

    def terms(self) -> list[str]:
        """The vocabulary in index order, for saving."""
        self._check_fitted()
        return list(self.vocabulary_)
