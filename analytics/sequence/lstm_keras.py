"""Keras pieces of the LSTM: a token table with bias, the sampled-softmax loss, the training monitor.

Keras is imported inside `keras_layers()` (cached), never at module import, so importing
analytics stays fast; the classes are registered for serialization the first time it runs,
which `NextEventModel.load` does before reading a saved network.
"""

from __future__ import annotations

import functools
import math
import time
import types
from typing import Any

import numpy as np
from numpy.typing import NDArray

PACKAGE = "rapport"
MASKED_LOGIT = -1e9


@functools.cache
def keras_layers() -> types.SimpleNamespace:
    """Define (once per process) and return the custom layers: `TokenTable`, `SampledSoftmaxLoss`."""
    import keras
    from keras import ops

    @keras.saving.register_keras_serializable(package=PACKAGE)
    class TokenTable(keras.layers.Layer):  # type: ignore[misc]
        """One `(vocab, dim)` table with a per-token bias, usable as input embedding and output layer.

        Called on integer token ids (`mode="embed"`) it looks up their rows and masks id 0
        (padding), like `Embedding(mask_zero=True)`; called on hidden states (`mode="logits"`)
        it scores every token by a dot product with its row plus its bias. Using one instance for
        both ties the input and output embeddings: every token's row then learns from being read
        and from being predicted, which is what rare tokens in a large vocabulary need, and the
        output layer adds no `units x vocab` matrix of its own.
        """

        def __init__(self, input_dim: int, output_dim: int, use_bias: bool = True, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.input_dim = int(input_dim)
            self.output_dim = int(output_dim)
            self.use_bias = bool(use_bias)

        def build(self, input_shape: Any = None) -> None:
            self.embeddings = self.add_weight(
                shape=(self.input_dim, self.output_dim),
                initializer=keras.initializers.RandomUniform(-0.05, 0.05),
                name="embeddings",
            )
            if self.use_bias:  # an input-only table (untied embeddings) needs none
                self.bias = self.add_weight(shape=(self.input_dim,), initializer="zeros", name="bias")

        def call(self, inputs: Any, mode: str = "embed") -> Any:
            if mode == "embed":
                return ops.take(self.embeddings, ops.cast(inputs, "int32"), axis=0)
            if mode == "logits":
                return ops.matmul(inputs, ops.transpose(self.embeddings)) + self.bias
            raise ValueError(f"mode must be 'embed' or 'logits', got {mode!r}")

        def compute_mask(self, inputs: Any, previous_mask: Any = None) -> Any:
            # Token ids (the embed call) mask padding; hidden states keep the mask they came with.
            if "int" in keras.backend.standardize_dtype(inputs.dtype):
                return ops.not_equal(inputs, 0)
            return previous_mask

        def get_config(self) -> dict[str, Any]:
            return {
                **super().get_config(),
                "input_dim": self.input_dim,
                "output_dim": self.output_dim,
                "use_bias": self.use_bias,
            }

    class SampledSoftmaxLoss(keras.layers.Layer):  # type: ignore[misc]
        """Per-step sampled-softmax cross-entropy against `table`'s rows (Jean et al. 2015).

        Each training batch scores its targets against `n_sampled` tokens drawn, with
        replacement and shared by the whole batch, from `proposal` (unigram counts to the power
        0.75, as word2vec does); logits are corrected by the log of each token's expected count
        so the loss estimates the full softmax's, and a drawn token equal to a step's target is
        masked out. Cost per step is `n_sampled x dim` instead of `vocab x dim`. Outside training
        a fixed draw is used, so the validation loss is comparable from epoch to epoch.

        Used only in the training graph, which is never saved; the saved network scores the
        full vocabulary through `table`'s logits.
        """

        def __init__(
            self, table: Any, proposal: NDArray[np.float64], n_sampled: int, seed: int, **kwargs: Any
        ) -> None:
            super().__init__(**kwargs)
            self.table = table
            self.n_sampled = int(n_sampled)
            q = np.asarray(proposal, dtype=np.float64)
            q = q / q.sum()
            with np.errstate(divide="ignore"):
                self.sample_logits = np.where(q > 0, np.log(q), MASKED_LOGIT).astype(np.float32)[None, :]
            # log(expected count); floored so padding targets (weight 0) stay finite.
            self.log_expected = np.log(np.maximum(q, 1e-12) * self.n_sampled).astype(np.float32)
            self.seed_generator = keras.random.SeedGenerator(seed)
            fixed = np.random.default_rng(seed).choice(len(q), size=self.n_sampled, p=q)
            self.fixed_candidates = fixed.astype(np.int32)

        def call(self, hidden: Any, targets: Any, training: bool | None = None) -> Any:
            if training:
                candidates = keras.random.categorical(
                    ops.convert_to_tensor(self.sample_logits), self.n_sampled, seed=self.seed_generator
                )[0]
            else:
                candidates = ops.convert_to_tensor(self.fixed_candidates)
            candidates = ops.cast(candidates, "int32")
            targets = ops.cast(targets, "int32")
            log_expected = ops.convert_to_tensor(self.log_expected)
            rows, bias = self.table.embeddings, self.table.bias
            true_logit = (
                ops.sum(hidden * ops.take(rows, targets, axis=0), axis=-1)
                + ops.take(bias, targets)
                - ops.take(log_expected, targets)
            )
            sampled = (
                ops.einsum("btd,sd->bts", hidden, ops.take(rows, candidates, axis=0))
                + ops.take(bias, candidates)
                - ops.take(log_expected, candidates)
            )
            hits = ops.equal(ops.expand_dims(targets, -1), candidates)
            sampled = ops.where(hits, MASKED_LOGIT, sampled)
            logits = ops.concatenate([ops.expand_dims(true_logit, -1), sampled], axis=-1)
            return ops.logsumexp(logits, axis=-1) - true_logit

        def compute_mask(self, inputs: Any, previous_mask: Any = None) -> None:
            # The loss is weighted by the batch's sample weights (zero on padding), not masked.
            return None

    class TrainingMonitor(keras.callbacks.Callback):  # type: ignore[misc]
        """Time budget, best weights and progress of one `fit`.

        Stops training (between batches, so one long epoch cannot overrun by much) once
        `budget` seconds have passed since `started`; the batches run so far still get validated.
        Keeps the weights of the epoch with the lowest `monitor` and restores them when training
        ends, however it ends (budget, early stopping or the last epoch). Logs each epoch's loss,
        validation loss, learning rate and seconds, which the CLI shows while training runs.

        `async_safe`: Keras may run the batch hook on a helper thread instead of waiting for each
        batch's loss to be read back (a callback with batch hooks otherwise forces that wait on
        every batch); the hook only reads the clock and sets `stop_training`, which then takes
        effect one batch later at most.
        """

        async_safe = True

        def __init__(
            self, *, monitor: str, started: float, budget: float | None, epochs: int, log: Any
        ) -> None:
            super().__init__()
            self.monitor = monitor
            self.started = started
            self.budget = budget
            self.epochs = epochs
            self.log = log
            self.stopped_by_budget = False
            self.best = math.inf
            self.best_epoch = 0
            self.best_weights: list[Any] | None = None
            self.epoch_seconds: list[float] = []
            self.epoch_started = started
            self.epoch_batches = 0

        def elapsed(self) -> float:
            return time.perf_counter() - self.started

        def over_budget(self) -> bool:
            return self.budget is not None and self.elapsed() >= self.budget

        def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
            self.epoch_started = time.perf_counter()
            self.epoch_batches = 0

        def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
            self.epoch_batches += 1
            if not self.stopped_by_budget and self.over_budget():
                self.stopped_by_budget = True
                self.model.stop_training = True
                self.log.info(
                    "lstm time budget of %.0f s reached after %d batches of epoch %d",
                    self.budget,
                    self.epoch_batches,
                    len(self.epoch_seconds) + 1,
                )

        def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
            logs = logs or {}
            seconds = time.perf_counter() - self.epoch_started
            self.epoch_seconds.append(seconds)
            value = float(logs.get(self.monitor, math.nan))
            if value < self.best:
                self.best, self.best_epoch = value, epoch + 1
                self.best_weights = self.model.get_weights()
            if not self.stopped_by_budget and self.over_budget():
                self.stopped_by_budget = True
                self.model.stop_training = True
            learning_rate = float(ops.convert_to_numpy(self.model.optimizer.learning_rate))
            self.log.info(
                "lstm epoch %d/%d: loss %.4f, %s %.4f, learning rate %.2g, %.1f s (%.0f s elapsed%s)%s",
                epoch + 1,
                self.epochs,
                float(logs.get("loss", math.nan)),
                self.monitor,
                value,
                learning_rate,
                seconds,
                self.elapsed(),
                "" if self.budget is None else f" of a {self.budget:.0f} s budget",
                "; time budget reached, stopping" if self.stopped_by_budget else "",
            )

        def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
            if self.best_weights is not None:
                self.model.set_weights(self.best_weights)

    return types.SimpleNamespace(
        TokenTable=TokenTable, SampledSoftmaxLoss=SampledSoftmaxLoss, TrainingMonitor=TrainingMonitor
    )


def passthrough_loss(y_true: Any, y_pred: Any) -> Any:
    """The training graph already outputs the per-step loss; Keras then weights and averages it."""
    return y_pred
