"""The sentence encoder and the classifier's embedding head: what they add and how models record them."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np
import pytest

from nlu import (
    ModelLoadError,
    ModelVersionError,
    NLUModel,
    TrainingConfig,
    evaluate,
    load_model,
    reads_csv,
    reads_yaml,
    save_model,
    train,
)
from nlu.encoder import USE_MULTILINGUAL_V3, get_encoder
from nlu.storage import METADATA_FILE
from nlu.training_data import TrainingData

CLINC_DIR = Path(__file__).resolve().parents[1] / "data" / "clinc150"

PARAPHRASE_YAML = """\
version: "3.1"
nlu:
- intent: cancel_subscription
  examples: |
    - cancel my subscription
    - i want to unsubscribe
    - end my plan
    - stop my membership
- intent: weather
  examples: |
    - will it rain today
    - what is the weather like
    - is it sunny outside
    - weather forecast please
- intent: greet
  examples: |
    - hello
    - hi there
    - good morning
    - hey
"""


def test_embeddings_are_unit_vectors_that_put_paraphrases_close() -> None:
    encoder = get_encoder(USE_MULTILINGUAL_V3)
    vectors = encoder.encode(
        ["how much does the pro plan cost", "what is the price of the pro plan", "is it raining in paris"]
    )
    assert vectors.shape == (3, encoder.dimension) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-4)
    similar, unrelated = float(vectors[0] @ vectors[1]), float(vectors[0] @ vectors[2])
    assert similar > unrelated + 0.3
    chinese = encoder.encode(["专业版多少钱", "今天会下雨吗"])
    assert float(chinese[0] @ vectors[0]) > float(chinese[0] @ vectors[2])
    assert encoder.encode([]).shape == (0, encoder.dimension)
    assert get_encoder(USE_MULTILINGUAL_V3) is encoder


def test_unknown_encoder_is_a_clear_error() -> None:
    with pytest.raises(ModelLoadError, match="unknown sentence encoder 'word2vec'"):
        get_encoder("word2vec")


def test_the_encoder_understands_words_the_training_data_never_used() -> None:
    data = reads_yaml(PARAPHRASE_YAML)
    both_heads_always = TrainingConfig(dense_weight_grid=(0.5,), skip_confidence_grid=())
    with_encoder = train(data, config=both_heads_always)
    assert with_encoder.classifier.skip_confidence > 1.0
    assert with_encoder.encoder is not None and with_encoder.classifier.uses_embeddings
    ngrams_only = train(data, config=TrainingConfig(sentence_encoder=None))
    unseen = {
        "quit paying for this service": "cancel_subscription",
        "I no longer want to be charged": "cancel_subscription",
        "snow tomorrow?": "weather",
        "howdy": "greet",
    }
    for text, intent in unseen.items():
        assert with_encoder.parse(text).intent_ranking[0].name == intent, text
    batch = with_encoder.parse_batch(list(unseen))
    assert [r.intent_ranking[0].name for r in batch] == list(unseen.values())
    assert [r.intent_ranking[0].name for r in ngrams_only.parse_batch(list(unseen))] != list(unseen.values())


def test_ngram_only_models_need_no_encoder(tmp_path: Path) -> None:
    model = train(reads_yaml(PARAPHRASE_YAML), config=TrainingConfig(sentence_encoder=None))
    assert model.encoder is None and not model.classifier.uses_embeddings
    save_model(model, tmp_path / "plain")
    metadata = json.loads((tmp_path / "plain" / METADATA_FILE).read_text(encoding="utf-8"))
    assert metadata["encoder"] is None
    loaded = load_model(tmp_path / "plain")
    assert loaded.encoder is None
    assert loaded.parse("hello there") == model.parse("hello there")


def test_saved_model_records_its_encoder_and_refuses_other_weights(
    default_model: NLUModel, tmp_path: Path
) -> None:
    assert default_model.encoder is not None
    model_dir = tmp_path / "model"
    save_model(default_model, model_dir)
    path = model_dir / METADATA_FILE
    metadata = json.loads(path.read_text(encoding="utf-8"))
    assert metadata["encoder"] == {
        "name": USE_MULTILINGUAL_V3,
        "fingerprint": default_model.encoder.fingerprint(),
    }
    assert metadata["classifier"]["dense_weight"] == default_model.classifier.dense_weight > 0
    metadata["encoder"]["fingerprint"] = "use-multilingual-v3/0.0.0/0000000000000000"
    path.write_text(json.dumps(metadata), encoding="utf-8")
    with pytest.raises(ModelVersionError, match="trained with sentence encoder"):
        load_model(model_dir)
    metadata["encoder"] = "use"
    path.write_text(json.dumps(metadata), encoding="utf-8")
    with pytest.raises(ModelLoadError, match="bad 'encoder' entry"):
        load_model(model_dir)


def _clinc(names: list[str], intents: set[str], per_intent: int | None = None) -> TrainingData:
    rows: list[tuple[str, str]] = []
    counts: dict[str, int] = {}
    for name in names:
        with (CLINC_DIR / name).open(encoding="utf-8") as handle:
            for row in csv.DictReader(handle):
                seen = counts.get(row["intent"], 0)
                if row["intent"] in intents and (per_intent is None or seen < per_intent):
                    rows.append((row["text"], row["intent"]))
                    counts[row["intent"]] = seen + 1
    out = io.StringIO()
    csv.writer(out).writerows([("text", "intent"), *rows])
    return reads_csv(out.getvalue())


@pytest.mark.skipif(not CLINC_DIR.is_dir(), reason=f"CLINC150 not found at {CLINC_DIR}")
def test_embedding_head_beats_ngrams_alone_with_few_examples() -> None:
    with (CLINC_DIR / "train.csv").open(encoding="utf-8") as handle:
        intents = set(sorted({r["intent"] for r in csv.DictReader(handle)})[:40])
    train_data = _clinc(["train.csv"], intents, per_intent=10)
    val_data = _clinc(["val.csv"], intents)
    ngrams = evaluate(train(train_data, config=TrainingConfig(sentence_encoder=None)), val_data)
    combined = train(train_data)
    assert combined.classifier.uses_embeddings
    report = evaluate(combined, val_data)
    assert report.accuracy >= ngrams.accuracy + 0.05
    assert report.accuracy >= 0.85
