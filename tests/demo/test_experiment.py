"""The demo's message experiment: stored like a campaign, judged by Rapport, checked against the truth."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from sqlalchemy import func, select
from typer.testing import CliRunner

from demo.experiment import DEFAULT_EXPERIMENT_USERS, ExperimentDesign, run_experiment
from demo.report import experiment_lines
from demo.simulation import make_population
from demo.simulation.experiments import plain_conversion_probabilities, run_variant_test
from store import create_db_engine
from store.db import unit_of_work
from store.models import Delivery, Event

NOW = datetime(2026, 12, 2, 12, tzinfo=UTC)


def _stored(path: Path) -> tuple[dict[str, int], int]:
    engine = create_db_engine(f"sqlite:///{path}")
    try:
        with unit_of_work(engine) as session:
            sends = {
                str(v): int(n)
                for v, n in session.execute(
                    select(Delivery.variant, func.count())
                    .where(Delivery.status == "sent")
                    .group_by(Delivery.variant)
                )
            }
            events = int(session.scalar(select(func.count()).select_from(Event)) or 0)
    finally:
        engine.dispose()
    return sends, events


def test_the_figures_are_what_the_store_holds(tmp_path: Path) -> None:
    path = tmp_path / "experiment.db"
    result = run_experiment(path, ExperimentDesign(users=1500), seed=4, now=NOW)
    sends, events = _stored(path)
    arms = {a["variant"]: a for a in result["arms"]}
    assert {v: a["sends"] for v, a in arms.items()} == sends
    assert sum(sends.values()) == 1500
    assert sum(a["conversions"] for a in arms.values()) == events  # one event per converted user
    for arm in arms.values():
        low, high = arm["interval"]
        assert low <= arm["rate"] <= high
    assert (
        result["truly_best"] == "c"
        and arms["c"]["true_rate"] > arms["b"]["true_rate"] > arms["a"]["true_rate"]
    )


def test_a_strong_variant_is_found_and_a_tiny_audience_declares_nothing(tmp_path: Path) -> None:
    strong = run_experiment(
        tmp_path / "strong.db",
        ExperimentDesign(users=3000, effects={"a": 1.0, "b": 1.0, "c": 3.0}),
        seed=1,
        now=NOW,
    )
    assert strong["winner"] == "c" and strong["picked_the_truly_best"]
    tiny = run_experiment(tmp_path / "tiny.db", ExperimentDesign(users=30), seed=1, now=NOW)
    assert tiny["winner"] is None and tiny["sent"] == "a"
    assert tiny["decision"].startswith("no significant winner")
    lines = experiment_lines(tiny)
    assert "no significant winner" in lines[-1] and "not the truly best" in lines[-1]
    assert experiment_lines({}) == []


def test_a_rerun_replaces_the_previous_store(tmp_path: Path) -> None:
    path = tmp_path / "experiment.db"
    run_experiment(path, ExperimentDesign(users=200), seed=2, now=NOW)
    run_experiment(path, ExperimentDesign(users=300), seed=2, now=NOW)
    sends, _events = _stored(path)
    assert sum(sends.values()) == 300


def test_variant_truth_multiplies_the_plain_probability() -> None:
    population = make_population(500, days=30, seed=0)
    when = datetime(2026, 10, 1, 10, tzinfo=UTC)
    test = run_variant_test(
        population,
        key="k",
        effects={"a": 1.0, "b": 2.0},
        when=when,
        rng=np.random.default_rng(0),
    )
    plain = plain_conversion_probabilities(population, when)
    for row, arm in enumerate(test.arms[:50]):
        assert test.probabilities[row] == min(plain[row] * (2.0 if arm == "b" else 1.0), 0.9)
    conversions, sends = test.counts(["a", "b"])
    assert sum(sends.values()) == 500 and sum(conversions.values()) == int(test.converted.sum())


def test_the_cli_offers_the_experiment_size_with_its_default() -> None:
    from cli import app

    result = CliRunner().invoke(app, ["demo", "--help"], terminal_width=200)
    assert result.exit_code == 0
    assert "--experiment-users" in result.output and str(DEFAULT_EXPERIMENT_USERS) in result.output
    assert ExperimentDesign().users == DEFAULT_EXPERIMENT_USERS
