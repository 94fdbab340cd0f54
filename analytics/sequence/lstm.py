"""The LSTM next-event model: Embedding → LSTM → Dropout → softmax over the token vocabulary."""

from __future__ import annotations

import logging
import os
import sys
import time
import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from analytics.errors import ModelFormatError
from analytics.sequence.base import (
    N_RESERVED,
    OOV_ID,
    BaseSequenceModel,
    build_vocabulary,
    check_sequences,
    construct,
    read_metadata,
)

logger = logging.getLogger(__name__)

MODEL_FILE = "model.keras"
SOFTMAX_CHOICES = ("auto", "full", "sampled")
# Vocabulary size above which softmax="auto" samples: from here the full output layer costs
# ~2.7x the LSTM step at the default sizes; below, drawing and gathering negatives cost more
# than they save (bench_sequence_scale times both at 1,000, 10,000 and 30,000 tokens).
SAMPLED_SOFTMAX_ABOVE = 2048
# 40 minutes. At a million users (~20M events) an epoch takes ~7 minutes on this 2-core machine
# (bench/RESULTS.md: 42 s per 100,000 users), so the budget allows ~5 epochs, and the first
# epoch alone already reaches most of the converged quality; the other 20 minutes of the nightly
# hour are for reading the event log and scoring the candidate and the active model.
DEFAULT_MAX_TRAIN_SECONDS = 2400.0
PROPOSAL_POWER = 0.75
PROJECTION = "projection"
OUTPUT_TABLE = "output_table"
IntArray = NDArray[np.int32]
FloatArray = NDArray[np.float32]


def _keras() -> Any:
    """Import Keras (and TensorFlow under it), quietening what is not the operator's business first.

    TensorFlow reads ``TF_CPP_MIN_LOG_LEVEL`` once, when it is first imported; the variable is set
    (unless the operator set it) only then, so importing this module leaves the environment alone.
    Level 2 keeps TensorFlow's C++ info and warnings off the terminal (errors still show); Rapport
    logs what training does itself. Keras 3 calls ``np.array(x)`` on tensors, which NumPy 2 answers with a
    ``DeprecationWarning`` on every batch (20 blocks in one `rapport followup evaluate`): that is
    Keras's to fix, so those warnings, and only those from Keras's own modules, are not shown.
    """
    if "tensorflow" not in sys.modules:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"keras(\.|$)")
    import keras

    return keras


def bucket_width(length: int, max_len: int) -> int:
    """Pad a training batch to a multiple of 8 steps, so few distinct shapes get compiled."""
    return min(max_len, max(8, -(-length // 8) * 8))


def _bucketed_batches(
    x: IntArray,
    y: IntArray,
    w: FloatArray,
    *,
    batch_size: int,
    max_len: int,
    seed: int,
    shuffle: bool,
    paired: bool = False,
) -> Any:
    """A Keras `PyDataset` of batches of windows of similar length, each padded only to its width.

    Histories are mostly short, so padding every window to `max_len` wastes most of the LSTM's
    steps; grouping by length bucket (shuffled within buckets and across batches each epoch)
    keeps the gradient noise of random batches at a fraction of the cost. With `paired`, the
    targets are also an input (`((x, y), y, w)`): the sampled-softmax trainer scores them itself.
    """
    keras = _keras()

    lengths = (x != 0).sum(axis=1)
    widths = np.array([min(bucket_width(int(length), max_len), x.shape[1]) for length in lengths])

    size = min(batch_size, len(widths))

    class BucketedWindows(keras.utils.PyDataset):  # type: ignore[misc,name-defined]
        def __init__(self) -> None:
            super().__init__()
            self.rng = np.random.default_rng(seed)
            self.batches: list[NDArray[np.int64]] = []
            self.on_epoch_end()

        def on_epoch_end(self) -> None:
            jitter = self.rng.random(len(widths)) if shuffle else np.arange(len(widths))
            order = np.lexsort((jitter, widths))
            batches: list[NDArray[np.int64]] = []
            for width in np.unique(widths):
                members = order[widths[order] == width]
                batches += [members[i : i + size] for i in range(0, len(members), size)]
            if shuffle:
                self.rng.shuffle(batches)  # type: ignore[arg-type]
            # Keras infers the TensorFlow input signature from the first two batches: make
            # them differ in width when widths differ, so the signature leaves it open.
            other = next((i for i, b in enumerate(batches) if widths[b[0]] != widths[batches[0][0]]), None)
            if other is not None and len(batches) > 1:
                batches[1], batches[other] = batches[other], batches[1]
            self.batches = batches

        def __len__(self) -> int:
            return len(self.batches)

        def __getitem__(self, index: int) -> tuple[Any, IntArray, FloatArray]:
            members = self.batches[index]
            width = int(widths[members[0]])
            weight = w[members, :width]
            if len(members) < size:
                # Every batch has the same size (see above); filler rows repeat windows at weight 0.
                filler = len(members)
                members = np.resize(members, size)
                weight = np.concatenate([weight, np.zeros((size - filler, width), dtype=np.float32)])
            inputs, targets = x[members, :width], y[members, :width]
            return ((inputs, targets) if paired else inputs), targets, weight

    return BucketedWindows()


def sampling_proposal(targets: IntArray, vocab_size: int) -> FloatArray:
    """Distribution negatives are drawn from: target counts (plus one) to the power 0.75.

    Popular tokens are the hard negatives, so most draws go to them, while the power and the
    add-one keep every token (rare, or seen only as a first event) drawable; padding never is.
    """
    counts = np.bincount(targets.ravel(), minlength=vocab_size).astype(np.float64)[:vocab_size] + 1.0
    proposal = counts**PROPOSAL_POWER
    proposal[0] = 0.0
    return np.asarray(proposal / proposal.sum(), dtype=np.float32)


def training_windows(encoded: Sequence[Sequence[int]], max_len: int) -> tuple[IntArray, IntArray, FloatArray]:
    """Cut encoded sequences into right-padded (input, target, weight) windows of `max_len` steps.

    Every prefix of every sequence is a training example (targets at every step). A sequence
    longer than `max_len` transitions is cut into windows that overlap by half, so each target
    still sees at least `max_len // 2` tokens of context; overlapped targets are weighted once.
    """
    stride = max(1, max_len // 2)
    inputs: list[Sequence[int]] = []
    targets: list[Sequence[int]] = []
    weights: list[Sequence[float]] = []
    for sequence in encoded:
        steps = len(sequence) - 1
        if steps < 1:
            continue
        starts = [*range(0, max(steps - max_len, 0), stride), max(steps - max_len, 0)]
        covered = 0
        for start in starts:
            end = min(start + max_len, steps)
            inputs.append(sequence[start:end])
            targets.append(sequence[start + 1 : end + 1])
            weights.append([0.0 if start + offset < covered else 1.0 for offset in range(end - start)])
            covered = end
    return _pad(inputs, targets, weights, max_len)


def validation_windows(
    encoded: Sequence[Sequence[int]], max_len: int
) -> tuple[IntArray, IntArray, FloatArray]:
    """One window per sequence whose only weighted target is the sequence's last token."""
    inputs: list[Sequence[int]] = []
    targets: list[Sequence[int]] = []
    weights: list[Sequence[float]] = []
    for sequence in encoded:
        if len(sequence) < 2:
            continue
        window_in = sequence[:-1][-max_len:]
        inputs.append(window_in)
        targets.append(sequence[1:][-max_len:])
        weights.append([0.0] * (len(window_in) - 1) + [1.0])
    return _pad(inputs, targets, weights, max_len)


def _pad(
    inputs: list[Sequence[int]], targets: list[Sequence[int]], weights: list[Sequence[float]], max_len: int
) -> tuple[IntArray, IntArray, FloatArray]:
    width = min(max_len, max((len(row) for row in inputs), default=1))
    x = np.zeros((len(inputs), width), dtype=np.int32)
    y = np.zeros((len(inputs), width), dtype=np.int32)
    w = np.zeros((len(inputs), width), dtype=np.float32)
    for row, (window_in, window_out, window_w) in enumerate(zip(inputs, targets, weights, strict=True)):
        x[row, : len(window_in)] = window_in
        y[row, : len(window_out)] = window_out
        w[row, : len(window_w)] = window_w
    return x, y, w


class NextEventModel(BaseSequenceModel):
    """Predicts a user's next interaction token from their recent ones with an LSTM.

    Trained on every prefix of every sequence (sparse targets at each step, padding masked and
    weighted out), with early stopping on validation loss, a plateau learning-rate schedule and
    a wall-clock budget. Keras is imported only inside `fit`, `load` and prediction so importing
    analytics stays fast.

    Two output layers, chosen by vocabulary size (`softmax="auto"`):

    - full softmax (the vocabularies of intents and event kinds, tens of tokens): a dense layer
      scores every token at every step, exact and cheap while the vocabulary is small;
    - sampled softmax (above `sampled_softmax_above` tokens, e.g. product catalogues): each
      training step scores its target against `n_sampled` tokens drawn by popularity, so the
      cost of a step no longer grows with the vocabulary; the output layer is then a table of
      token embeddings (tied to the input one with `tie_embeddings`). Prediction still scores
      the whole vocabulary, by one matrix product of the last hidden state with that table.

    Args:
        max_len: the most recent tokens the model reads; longer histories are cut into windows.
        embedding_dim: size of the token embedding.
        units: LSTM state size.
        dropout: dropout rate on the LSTM outputs.
        epochs: upper bound on training epochs (early stopping usually ends sooner).
        batch_size: training batch size (prediction streams in batches of 1024 prefixes).
        learning_rate: Adam's initial learning rate, halved on each validation plateau.
        min_count: tokens seen fewer times map to the OOV id.
        patience: epochs without validation improvement before stopping (best weights restored).
        random_state: seed for weights, shuffling, dropout and negative sampling.
        softmax: "auto", "full" or "sampled" (see above).
        sampled_softmax_above: vocabulary size above which "auto" samples. At the default
            2,048 the full output layer (`units x vocabulary` per step) already costs about
            three times the LSTM step it follows (`4 x units x (embedding_dim + units)`).
        n_sampled: tokens drawn per training batch for the sampled softmax.
        tie_embeddings: share one table between input embedding and output layer. It halves
            the embedding parameters (worth it when memory binds, at hundreds of thousands of
            tokens), but on the 10,000-token benchmark (bench_sequence_scale) separate tables
            learned faster per epoch (validation loss .490 against .528 after four epochs,
            HR@10 .719 against .713 after six), so tying is not the default.
        max_train_seconds: wall-clock budget of `fit`, from its start; training then stops
            between batches, keeps the best weights so far and reports `stopped_by_budget` in
            `metrics_`. None means no budget. The default, 40 minutes, leaves the nightly
            retrain on a million users the rest of its hour for loading the event log and
            scoring the candidate and the active model.
    """

    model_type = "lstm"
    _encoder: tuple[Any, FloatArray, FloatArray] | None = None

    def __init__(
        self,
        max_len: int = 50,
        embedding_dim: int = 64,
        units: int = 128,
        dropout: float = 0.2,
        epochs: int = 30,
        batch_size: int = 256,
        learning_rate: float = 1e-3,
        min_count: int = 2,
        patience: int = 3,
        random_state: int = 0,
        softmax: str = "auto",
        sampled_softmax_above: int = SAMPLED_SOFTMAX_ABOVE,
        n_sampled: int = 512,
        tie_embeddings: bool = False,
        max_train_seconds: float | None = DEFAULT_MAX_TRAIN_SECONDS,
    ) -> None:
        self.max_len = max_len
        self.embedding_dim = embedding_dim
        self.units = units
        self.dropout = dropout
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.min_count = min_count
        self.patience = patience
        self.random_state = random_state
        self.softmax = softmax
        self.sampled_softmax_above = sampled_softmax_above
        self.n_sampled = n_sampled
        self.tie_embeddings = tie_embeddings
        self.max_train_seconds = max_train_seconds

    def _check_params(self) -> None:
        names = ("max_len", "embedding_dim", "units", "epochs", "batch_size", "min_count", "n_sampled")
        for name in (*names, "sampled_softmax_above"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout!r}")
        if self.learning_rate <= 0:
            raise ValueError(f"learning_rate must be > 0, got {self.learning_rate!r}")
        if self.patience < 0:
            raise ValueError(f"patience must be >= 0, got {self.patience!r}")
        if self.softmax not in SOFTMAX_CHOICES:
            raise ValueError(f"softmax must be one of {', '.join(SOFTMAX_CHOICES)}, got {self.softmax!r}")
        if not isinstance(self.tie_embeddings, bool):
            raise ValueError(f"tie_embeddings must be True or False, got {self.tie_embeddings!r}")
        budget = self.max_train_seconds
        if budget is not None and (isinstance(budget, bool) or not budget > 0):
            raise ValueError(f"max_train_seconds must be > 0 or None, got {budget!r}")

    def output_layer(self, n_tokens: int) -> tuple[bool, bool]:
        """(sampled softmax?, tied embeddings?) for a vocabulary of `n_tokens` known tokens."""
        if self.softmax == "auto":
            sampled = n_tokens > self.sampled_softmax_above
        else:
            sampled = self.softmax == "sampled"
        return sampled, self.tie_embeddings

    def _encode(self, sequence: Sequence[str], index: dict[str, int]) -> list[int]:
        return [index.get(token, OOV_ID) for token in sequence]

    def _token_ids(self) -> dict[str, int]:
        return {token: position + N_RESERVED for position, token in enumerate(self.classes_.tolist())}

    def fit(
        self,
        sequences: Iterable[Sequence[str]],
        validation_sequences: Iterable[Sequence[str]] | None = None,
    ) -> NextEventModel:
        """Build the vocabulary and train; returns self.

        Args:
            sequences: token sequences, oldest first, one per user.
            validation_sequences: sequences whose *last* token is a validation target (the
                leave-one-out protocol's `seq[:-1]`). When None, the last token of each training
                sequence of three or more tokens is held out for validation instead, and not
                trained on.
        """
        started = time.perf_counter()
        self._check_params()
        data = check_sequences(sequences)
        if validation_sequences is None:
            validation = [sequence for sequence in data if len(sequence) >= 3]
            training = [sequence[:-1] if len(sequence) >= 3 else sequence for sequence in data]
        else:
            validation = check_sequences(validation_sequences, name="validation_sequences")
            training = data
        vocabulary, counts = build_vocabulary(data, self.min_count)
        self.classes_ = np.array(vocabulary, dtype=np.str_)
        raw = np.array([counts[token] for token in vocabulary], dtype=np.float64)
        self.prior_ = raw / raw.sum()
        index = self._token_ids()
        x, y, w = training_windows([self._encode(seq, index) for seq in training], self.max_len)
        if len(x) == 0:
            raise ValueError("no sequence has two or more tokens to learn a transition from")
        xv, yv, wv = validation_windows([self._encode(seq, index) for seq in validation], self.max_len)
        sampled, tied = self.output_layer(len(vocabulary))
        vocab_size = len(vocabulary) + N_RESERVED

        keras = _keras()

        from analytics.sequence.lstm_keras import keras_layers

        keras.utils.set_random_seed(self.random_state)
        proposal = sampling_proposal(y[w > 0], vocab_size) if sampled else None
        self.model_, trainer = self._build(vocab_size, tied=tied, proposal=proposal)
        self._encoder = None
        monitor = "val_loss" if len(xv) else "loss"
        progress = keras_layers().TrainingMonitor(
            monitor=monitor, started=started, budget=self.max_train_seconds, epochs=self.epochs, log=logger
        )
        callbacks = [
            keras.callbacks.EarlyStopping(
                monitor=monitor, patience=self.patience, restore_best_weights=True, min_delta=1e-4
            ),
            keras.callbacks.ReduceLROnPlateau(
                monitor=monitor, factor=0.5, patience=1, min_lr=self.learning_rate / 32
            ),
            progress,
        ]
        logger.info(
            "lstm training: %d tokens (%s%s), %d windows, %d validation targets, budget %s",
            len(vocabulary),
            f"sampled softmax, {self.n_sampled} drawn per batch" if sampled else "full softmax",
            ", tied embeddings" if tied else "",
            len(x),
            len(xv),
            "none" if self.max_train_seconds is None else f"{self.max_train_seconds:.0f} s",
        )
        batches: dict[str, Any] = {
            "batch_size": self.batch_size,
            "max_len": self.max_len,
            "seed": self.random_state,
            "paired": sampled,
        }
        fit_started, cpu_started = time.perf_counter(), time.process_time()
        history = trainer.fit(
            _bucketed_batches(x, y, w, shuffle=True, **batches),
            validation_data=_bucketed_batches(xv, yv, wv, shuffle=False, **batches) if len(xv) else None,
            epochs=self.epochs,
            callbacks=callbacks,
            verbose=0,
        )
        fit_seconds = time.perf_counter() - fit_started
        cpu_seconds = time.process_time() - cpu_started
        seconds = time.perf_counter() - started
        epochs_run = len(history.history.get("loss", []))
        # A last epoch cut short by the budget would understate the time an epoch takes.
        whole = progress.epoch_seconds[:-1] if progress.stopped_by_budget else progress.epoch_seconds
        whole = whole or progress.epoch_seconds
        self.metrics_: dict[str, float] = {
            "epochs_run": float(epochs_run),
            "best_epoch": float(progress.best_epoch or epochs_run),
            "best_" + monitor: progress.best if progress.best_epoch else float("nan"),
            "train_seconds": seconds,
            "seconds_per_epoch": float(np.mean(whole)) if whole else fit_seconds,
            "cpu_cores_busy": cpu_seconds / max(fit_seconds, 1e-9),
            "n_windows": float(len(x)),
            "n_validation": float(len(xv)),
            "stopped_by_budget": progress.stopped_by_budget,
            "sampled_softmax": sampled,
            "tied_embeddings": tied,
        }
        logger.info(
            "lstm fitted: %d tokens, %d windows, %d epochs in %.1f s (%.1f s per epoch, %.1f cores "
            "busy), best %s %.4f at epoch %d%s",
            len(vocabulary),
            len(x),
            epochs_run,
            seconds,
            self.metrics_["seconds_per_epoch"],
            self.metrics_["cpu_cores_busy"],
            monitor,
            self.metrics_["best_" + monitor],
            int(self.metrics_["best_epoch"]),
            "; stopped by the time budget" if progress.stopped_by_budget else "",
        )
        return self

    def _build(self, vocab_size: int, *, tied: bool, proposal: FloatArray | None) -> tuple[Any, Any]:
        """The network to save (token ids -> next-token probabilities) and the model to train.

        With a full softmax they are the same model; with a sampled one the trainer shares the
        network's layers and outputs the per-step sampled loss instead.
        """
        keras = _keras()

        optimizer = keras.optimizers.Adam(learning_rate=self.learning_rate, clipnorm=1.0)
        inputs = keras.Input(shape=(None,), dtype="int32", name="tokens")
        if not tied and proposal is None:
            hidden = keras.layers.Embedding(vocab_size, self.embedding_dim, mask_zero=True, name="embedding")(
                inputs
            )
            hidden = keras.layers.LSTM(self.units, return_sequences=True, name="lstm")(hidden)
            hidden = keras.layers.Dropout(self.dropout, name="dropout")(hidden)
            outputs = keras.layers.Dense(vocab_size, activation="softmax", name="next_token")(hidden)
            network = keras.Model(inputs, outputs, name="next_event")
            network.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy")
            return network, network

        from analytics.sequence.lstm_keras import keras_layers, passthrough_loss

        layers = keras_layers()
        table = layers.TokenTable(vocab_size, self.embedding_dim, use_bias=tied, name="embedding")
        hidden = table(inputs, mode="embed")
        hidden = keras.layers.LSTM(self.units, return_sequences=True, name="lstm")(hidden)
        hidden = keras.layers.Dropout(self.dropout, name="dropout")(hidden)
        hidden = keras.layers.Dense(self.embedding_dim, name=PROJECTION)(hidden)
        output_table = table if tied else layers.TokenTable(vocab_size, self.embedding_dim, name=OUTPUT_TABLE)
        logits = output_table(hidden, mode="logits")
        outputs = keras.layers.Activation("softmax", name="next_token")(logits)
        network = keras.Model(inputs, outputs, name="next_event")
        if proposal is None:
            network.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy")
            return network, network
        targets = keras.Input(shape=(None,), dtype="int32", name="targets")
        loss = layers.SampledSoftmaxLoss(
            output_table, proposal, self.n_sampled, self.random_state, name="sampled_softmax"
        )(hidden, targets)
        trainer = keras.Model([inputs, targets], loss, name="next_event_sampled_training")
        trainer.compile(optimizer=optimizer, loss=passthrough_loss)
        return network, trainer

    def _encoder_and_output(self) -> tuple[Any, FloatArray, FloatArray]:
        """The network up to its last hidden state, and the output layer as (weights, bias).

        Prediction runs the LSTM, takes each prefix's last step only and scores the vocabulary
        with one matrix product, instead of a softmax over every token at every padded step.
        """
        if self._encoder is not None:
            return self._encoder
        keras = _keras()

        names = {layer.name for layer in self.model_.layers}
        last = PROJECTION if PROJECTION in names else "dropout"
        encoder = keras.Model(self.model_.inputs, self.model_.get_layer(last).output)
        if last == PROJECTION:
            table = self.model_.get_layer(OUTPUT_TABLE if OUTPUT_TABLE in names else "embedding")
            weights = np.asarray(table.embeddings.numpy(), dtype=np.float32).T
            bias = np.asarray(table.bias.numpy(), dtype=np.float32)
        else:
            dense = self.model_.get_layer("next_token")
            weights = np.asarray(dense.kernel.numpy(), dtype=np.float32)
            bias = np.asarray(dense.bias.numpy(), dtype=np.float32)
        self._encoder = (encoder, weights[:, N_RESERVED:], bias[N_RESERVED:])
        return self._encoder

    def _predict_batch(self, prefixes: list[list[str]]) -> NDArray[np.float64]:
        index = self._token_ids()
        encoded = [[index.get(token, OOV_ID) for token in prefix[-self.max_len :]] for prefix in prefixes]
        empty = sum(1 for row in encoded if not row)
        if empty:
            logger.debug("%d empty prefixes ranked by the model's OOV-only prior", empty)
        encoded = [row or [OOV_ID] for row in encoded]
        lengths = np.fromiter(map(len, encoded), dtype=np.int64, count=len(encoded))
        encoder, weights, bias = self._encoder_and_output()
        states = np.empty((len(encoded), weights.shape[0]), dtype=np.float32)
        # Rows are grouped by length bucket and each group is padded only to its width: histories
        # are mostly short, and padding all to the longest would run the LSTM over empty steps.
        widths = np.minimum(self.max_len, np.maximum(8, -(-lengths // 8) * 8))
        for width in np.unique(widths).tolist():
            rows = np.flatnonzero(widths == width)
            x = np.zeros((len(rows), width), dtype=np.int32)
            for offset, row in enumerate(rows.tolist()):
                x[offset, : lengths[row]] = encoded[row]
            output = np.asarray(encoder.predict_on_batch(x))
            states[rows] = output[np.arange(len(rows)), lengths[rows] - 1]
        # Padding and OOV are never predicted: the softmax runs over the known tokens only,
        # which equals the full softmax renormalised over them.
        logits = (states @ weights + bias).astype(np.float64)
        logits -= logits.max(axis=1, keepdims=True)
        result = np.exp(logits)
        return np.asarray(result / result.sum(axis=1, keepdims=True), dtype=np.float64)

    def save(self, directory: str | Path) -> None:
        """Write `model.keras` and `metadata.json` (vocabulary, parameters, metrics) to `directory`."""
        path = Path(directory)
        self._write_metadata(path, {"model_file": MODEL_FILE})
        self.model_.save(path / MODEL_FILE)

    @classmethod
    def load(cls, directory: str | Path) -> NextEventModel:
        """Load a model written by `save`.

        Raises:
            ModelFormatError: if the metadata is of another format version or type, the Keras
                file is missing or unreadable, or its input/output sizes do not match the vocabulary.
        """
        metadata = read_metadata(directory, expected_type=cls.model_type)
        model = construct(cls, metadata, directory)
        path = Path(directory) / MODEL_FILE
        if not path.is_file():
            raise ModelFormatError(f"{path}: the Keras model file is missing")
        keras = _keras()

        from analytics.sequence.lstm_keras import keras_layers

        keras_layers()  # registers the custom layers a large-vocabulary network is made of
        try:
            network = keras.saving.load_model(path, compile=False)
        except (OSError, ValueError, TypeError, KeyError) as exc:
            raise ModelFormatError(f"{path}: cannot load the Keras model: {exc}") from exc
        expected = len(metadata["vocabulary"]) + N_RESERVED
        outputs = int(network.output_shape[-1])
        inputs = int(network.get_layer("embedding").input_dim)
        if outputs != expected or inputs != expected:
            raise ModelFormatError(
                f"{directory}: the network has {inputs} inputs and {outputs} outputs but the "
                f"vocabulary needs {expected} (with padding and OOV)"
            )
        model.model_ = network
        model._encoder = None
        model.classes_ = np.array(metadata["vocabulary"], dtype=np.str_)
        model.prior_ = np.array(metadata["prior"], dtype=np.float64)
        model.metrics_ = dict(metadata["metrics"])
        return model
