"""`rapport followup train|evaluate`: the follow-up model, trained and judged on a time-based split."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

import typer
from rich.console import Console
from rich.table import Table

from analytics import AnalyticsError
from analytics.sequence import MarkovModel, NextEventModel, PopularityModel
from cli.common import engine_scope, fail, get_settings
from scheduler import retrain_followup_model
from scheduler.retrain import MIN_TEST_PAIRS, TrainableModel, evaluate_model, held_out_split

app = typer.Typer(help="The follow-up model: train it from the event log, compare it with baselines.")
out = Console(highlight=False, soft_wrap=True)

MODELS: dict[str, type[NextEventModel] | type[MarkovModel] | type[PopularityModel]] = {
    "lstm": NextEventModel,
    "markov": MarkovModel,
    "popularity": PopularityModel,
}


def _factory(name: str, max_train_seconds: float | None = None) -> TrainableModel:
    if name == "lstm":
        if max_train_seconds is None:
            return NextEventModel(random_state=0)
        return NextEventModel(random_state=0, max_train_seconds=max_train_seconds)
    return MODELS[name]()


class _ConsoleHandler(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        out.print(self.format(record))


@contextmanager
def _training_progress() -> Iterator[None]:
    """Show the LSTM's per-epoch progress on the console, whatever the configured log level."""
    training_logger = logging.getLogger("analytics.sequence.lstm")
    handler = _ConsoleHandler(logging.INFO)
    saved = training_logger.level, training_logger.propagate
    training_logger.addHandler(handler)
    training_logger.setLevel(logging.INFO)
    training_logger.propagate = False  # shown once, here, not again by the root handler
    try:
        yield
    finally:
        training_logger.removeHandler(handler)
        training_logger.setLevel(saved[0])
        training_logger.propagate = saved[1]


@app.command("train")
def train(
    ctx: typer.Context,
    holdout_days: int = typer.Option(
        7, "--holdout-days", help="Latest days of events held out for evaluation."
    ),
    model: str = typer.Option("lstm", "--model", help="lstm, markov or popularity."),
    max_train_seconds: float | None = typer.Option(
        None, "--max-train-seconds", help="LSTM training time budget (default: the model's own)."
    ),
) -> None:
    """Train on the past, evaluate on the held-out days, record the run; activate it if no worse."""
    if model not in MODELS:
        fail(f"--model must be one of {', '.join(MODELS)}, got {model!r}")
    if holdout_days < 1:
        fail(f"--holdout-days must be at least 1, got {holdout_days}")
    if max_train_seconds is not None and max_train_seconds <= 0:
        fail(f"--max-train-seconds must be positive, got {max_train_seconds}")
    settings = get_settings(ctx)
    with engine_scope(settings) as engine, _training_progress():
        try:
            result = retrain_followup_model(
                engine,
                model_dir=settings.resolved_followup_model_dir,
                now=datetime.now(UTC),
                holdout_days=holdout_days,
                model_factory=lambda: _factory(model, max_train_seconds),
                refresh_analytics=False,
            )
        except (AnalyticsError, ValueError, OSError) as exc:
            fail(f"training failed: {exc}")
    if result.run_id is None:
        fail(result.decision)
    if result.training.get("stopped_by_budget"):
        out.print(f"training stopped by its time budget after {result.training['epochs_run']:.0f} epochs")
    out.print(f"model run {result.run_id}: {result.decision}")


@app.command("evaluate")
def evaluate(
    ctx: typer.Context,
    holdout_days: int = typer.Option(
        7, "--holdout-days", help="Latest days of events held out for evaluation."
    ),
) -> None:
    """HR@1/5/10, NDCG@10 and MRR of the LSTM, Markov and popularity models, side by side."""
    if holdout_days < 1:
        fail(f"--holdout-days must be at least 1, got {holdout_days}")
    with engine_scope(get_settings(ctx)) as engine:
        split = held_out_split(engine, now=datetime.now(UTC), holdout_days=holdout_days)
    if len(split.test_prefixes) < MIN_TEST_PAIRS or not split.train:
        fail(
            f"too little data: {len(split.test_prefixes)} held-out events in the last {holdout_days} days "
            f"(need {MIN_TEST_PAIRS}) and {len(split.train)} training sequences"
        )
    table = Table(
        "model",
        "HR@1",
        "HR@5",
        "HR@10",
        "NDCG@10",
        "MRR",
        title=f"{len(split.test_prefixes)} held-out events",
    )
    for name in MODELS:
        try:
            fitted = _factory(name)
            fitted.fit(split.train)
            scores = evaluate_model(fitted, split)
        except (AnalyticsError, ValueError) as exc:
            fail(f"{name}: {exc}")
        table.add_row(name, *(f"{scores[key]:.4f}" for key in ("hr@1", "hr@5", "hr@10", "ndcg@10", "mrr")))
    out.print(table)
