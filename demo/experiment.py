"""The demo's message experiment: three variants of one broadcast, their true effects known only here.

Why a separate audience: at the demo's 400 users (about 130 per variant and a 9 % base
conversion) no test can tell a 1.5x variant from noise; 95 % power for that needs about 1,550
users per variant (`bench/bench_experiments.py` prints the power beside the measured rate). So
the experiment goes to `DEFAULT_EXPERIMENT_USERS` simulated users of their own (2,000 per
variant) in their own SQLite store beside the demo's (`data/experiment.db`): the community the
dashboard shows stays the 400 users the rest of the demo talks to.

What is real: arms come from Rapport's stable hash (`analytics.experiments.assign_arm`), the
deliveries are stored with `deliveries.variant`, conversions are events in the event log,
and the figures are read back from the store (`store.send_times.variant_outcomes`: sends,
conversions within 48 h) and judged by `analytics.experiments.evaluate_experiment` (Wilson
intervals, chi-squared, Holm-adjusted winner). What is simulated: who converts, from the
simulator's hidden per-variant multipliers and each user's hour responsiveness. The broadcast
experiment engine (CLI `--variant`) can replace the store-writing step later; the reading and
judging stay the same.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import Engine, insert, update

from analytics.experiments import evaluate_experiment
from demo.simulation import make_population
from demo.simulation.experiments import run_variant_test
from store import create_db_engine, upgrade
from store.campaign_reports import RESPONSE_WINDOW
from store.campaigns import NewDelivery, create_campaign
from store.db import read_snapshot, unit_of_work
from store.models import Delivery, Event, User
from store.send_times import variant_outcomes
from store.vocabulary import CampaignKind, DeliveryStatus

__all__ = ["DEFAULT_EXPERIMENT_USERS", "ExperimentDesign", "run_experiment"]

logger = logging.getLogger(__name__)

DEFAULT_EXPERIMENT_USERS = 6000
"""Three variants of 2,000 users: 98 % power for a 1.5x variant at the simulator's 9 % base rate."""
_ID_BASE = 900_000_000


@dataclass(frozen=True)
class ExperimentDesign:
    """The experiment the demo runs.

    Attributes:
        users: Simulated users of the experiment's audience.
        effects: The hidden truth: each variant's conversion multiplier (c is 1.5x b, 1.8x a).
        texts: The variants' messages.
        default: The manager's default variant, sent when no arm is significantly best.
    """

    users: int = DEFAULT_EXPERIMENT_USERS
    effects: dict[str, float] = field(default_factory=lambda: {"a": 1.0, "b": 1.2, "c": 1.8})
    texts: dict[str, str] = field(
        default_factory=lambda: {
            "a": "New in rapport-pro: agents that remember your project. Try it today.",
            "b": "Your agents can now remember your project between sessions. Want a 2-minute tour?",
            "c": "You asked, we built it: project memory for agents. Reply 'tour' for a walk-through.",
        }
    )
    default: str = "a"


def _store_experiment(
    engine: Engine,
    design: ExperimentDesign,
    ids: list[int],
    arms: list[str],
    converted: list[bool],
    *,
    sent_at: datetime,
    rng: np.random.Generator,
) -> int:
    """The audience, the campaign with one sent delivery per user (its variant) and the conversions."""
    with unit_of_work(engine) as session:
        session.execute(
            insert(User),
            [{"id": u, "first_seen": sent_at - timedelta(days=30), "last_seen": sent_at} for u in ids],
        )
    rows = [
        NewDelivery(user_id=u, chat_id=u, text=design.texts[arm], due_at=sent_at, variant=arm)
        for u, arm in zip(ids, arms, strict=True)
    ]
    campaign_id = create_campaign(
        engine,
        kind=CampaignKind.BROADCAST,
        name="demo experiment: three variants",
        segment="all",
        text=design.texts[design.default],
        scheduled_at=sent_at,
        now=sent_at,
        attributes={"experiment": {"variants": list(design.texts), "default": design.default}},
        deliveries=rows,
    )
    delays = rng.uniform(60, RESPONSE_WINDOW.total_seconds() / 2, len(ids))
    with unit_of_work(engine) as session:
        session.execute(
            update(Delivery)
            .where(Delivery.campaign_id == campaign_id)
            .values(status=DeliveryStatus.SENT, sent_at=sent_at, attempts=1)
        )
        events = [
            {
                "user_id": u,
                "chat_id": u,
                "ts": sent_at + timedelta(seconds=float(d)),
                "kind": "message",
                "intent": "greet",
                "attributes": {"experiment_campaign": campaign_id},
            }
            for u, hit, d in zip(ids, converted, delays, strict=True)
            if hit
        ]
        if events:
            session.execute(insert(Event), events)
    return campaign_id


def run_experiment(path: Path, design: ExperimentDesign, *, seed: int, now: datetime) -> dict[str, Any]:
    """Run the experiment into a fresh store at `path`; its figures, decision and truth as JSON data."""
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    engine = create_db_engine(f"sqlite:///{path}")
    try:
        upgrade(engine)
        population = make_population(design.users, days=60, seed=seed + 1)
        sent_at = (now - RESPONSE_WINDOW - timedelta(hours=1)).replace(minute=0, second=0, microsecond=0)
        test = run_variant_test(
            population,
            key=f"demo-{seed}",
            effects=design.effects,
            when=sent_at,
            rng=np.random.default_rng([seed, 31]),
        )
        ids = [_ID_BASE + int(u) for u in population.ids.tolist()]
        campaign_id = _store_experiment(
            engine,
            design,
            ids,
            test.arms,
            test.converted.tolist(),
            sent_at=sent_at,
            rng=np.random.default_rng([seed, 32]),
        )
        with read_snapshot(engine) as session:
            outcomes = variant_outcomes(session, campaign_id, now=now, window=RESPONSE_WINDOW)
    finally:
        engine.dispose()
    variants = list(design.effects)
    sends = {v: outcomes[v].sends if v in outcomes else 0 for v in variants}
    conversions = {v: outcomes[v].conversions if v in outcomes else 0 for v in variants}
    result = evaluate_experiment(conversions, sends, default=design.default)
    truth = test.true_rates(variants)
    truly_best = max(truth, key=lambda v: truth[v])
    winner = result.winner
    if winner is None:  # evaluate_experiment decides whenever a default is given
        raise RuntimeError("the experiment was evaluated without a decision")
    return {
        "users": design.users,
        "campaign_id": campaign_id,
        "store": path.name,
        "window_hours": RESPONSE_WINDOW.total_seconds() / 3600,
        "arms": [
            {
                "variant": a.arm,
                "text": design.texts[a.arm],
                "sends": a.sends,
                "conversions": a.conversions,
                "rate": a.rate,
                "interval": list(a.interval) if a.interval else None,
                "true_multiplier": design.effects[a.arm],
                "true_rate": round(truth[a.arm], 4),
            }
            for a in result.arms
        ],
        "chi_squared": None
        if result.chi_squared is None
        else {"statistic": result.chi_squared[0], "p_value": result.chi_squared[1]},
        "winner": winner.arm if winner.declared else None,
        "sent": winner.arm,
        "decision": winner.reason if winner.declared else f"no significant winner: {winner.reason}",
        "truly_best": truly_best,
        "picked_the_truly_best": winner.declared and winner.arm == truly_best,
    }
