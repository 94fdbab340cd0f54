"""TF-IDF features: the fast single-text path equals the batch path; Chinese gets features."""

from __future__ import annotations

import numpy as np
import pytest

from nlu import NotFittedError, TextFeaturizer, TrainingDataError
from nlu.featurizer import char_ngrams, normalize, word_ngrams

TEXTS = ["how much is the pro plan", "价格是多少", "reset my password", "密码忘了怎么办", "hi"]


def test_analyzers_by_hand() -> None:
    assert normalize("  ＨＥＬＬＯ\tWorld\x00! ") == "hello world !"
    assert word_ngrams("reset my pw", (1, 2)) == ["reset", "my", "pw", "reset my", "my pw"]
    assert word_ngrams("价格", (1, 1)) == ["价", "格"]
    assert char_ngrams("ab", (2, 3)) == [" a", "ab", "b ", " ab", "ab "]


def test_single_path_equals_batch_path() -> None:
    featurizer = TextFeaturizer(min_df=1).fit(TEXTS)
    matrix = featurizer.transform([*TEXTS, "unseen words only zzz"])
    for row, text in enumerate(TEXTS):
        indices, values = featurizer.transform_one(text)
        dense = np.zeros(matrix.shape[1], dtype=np.float32)
        dense[indices] = values
        np.testing.assert_allclose(matrix[row].toarray()[0], dense, rtol=1e-6)
        # each block (word, char) is L2-normalised: the row norm is sqrt(2)
        assert np.dot(values, values) == pytest.approx(2.0, rel=1e-5)
    assert len(featurizer.transform_one("价格")[0]) > 0


def test_empty_text_has_no_features_and_unfitted_raises() -> None:
    featurizer = TextFeaturizer(min_df=1).fit(TEXTS)
    assert featurizer.transform(["", "   "]).nnz == 0
    with pytest.raises(NotFittedError, match="not fitted"):
        TextFeaturizer().transform_one("hi")


def test_state_round_trip() -> None:
    featurizer = TextFeaturizer(min_df=1).fit(TEXTS)
    again = TextFeaturizer.from_state(
        featurizer.get_config(), featurizer.terms(), featurizer.idf_, featurizer.n_word_features_
    )
    assert (again.transform(TEXTS) != featurizer.transform(TEXTS)).nnz == 0


def test_texts_without_features_are_a_training_data_error() -> None:
    with pytest.raises(TrainingDataError, match="no usable words"):
        TextFeaturizer(min_df=5).fit(["!", "?"])
    punctuation = TextFeaturizer(min_df=1).fit(["!", "?"])  # no word n-grams, but character ones
    assert punctuation.n_word_features_ == 0
    assert punctuation.transform_one("!")[0].size > 0
