"""The experiment store: variants and buttons round-trip, the winner step at most once, goals by event."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, func, select

from store import EventRecord, UserInfo, append_events, upsert_user
from store.campaigns import NewDelivery, finish_campaigns, start_due_campaigns
from store.db import unit_of_work
from store.deliveries import claim_batch, mark_sent
from store.experiments import (
    NewExperiment,
    VariantButton,
    VariantInfo,
    add_experiment,
    add_rows,
    arm_counts,
    due_experiments,
    get_experiment,
    record_winner,
)
from store.models import Delivery
from store.plans import NewCampaign, add_campaign
from store.vocabulary import CampaignKind, EventKind, ExperimentStatus

NOW = datetime(2026, 5, 4, 9, 0, tzinfo=UTC)
VARIANTS = (
    VariantInfo("A", "Hello A", (VariantButton("Go"), VariantButton("Docs", "https://d.example")), True),
    VariantInfo("B", "Hello B"),
)


def _experiment(
    engine: Engine, *, status: str, goal: str = "return", users: range = range(1, 7)
) -> tuple[int, int]:
    for user in users:
        upsert_user(engine, UserInfo(id=user), seen_at=NOW)
    rows = [NewDelivery(u, u, f"Hello {'AB'[u % 2]}", NOW, variant="AB"[u % 2], phase="test") for u in users]
    with unit_of_work(engine) as session:
        campaign_id = add_campaign(
            session, NewCampaign(CampaignKind.BROADCAST, "x", "all", "Hello A", NOW), (), now=NOW
        )
        experiment_id = add_experiment(
            session,
            campaign_id,
            NewExperiment("broadcast", "x", goal, 24.0, 0.0, status, 0.5, 3600, NOW + timedelta(hours=1)),
            VARIANTS,
            now=NOW,
        )
        add_rows(session, campaign_id, rows, now=NOW)
    return campaign_id, experiment_id


def test_variants_round_trip_and_claimed_rows_carry_their_buttons(engine: Engine) -> None:
    campaign_id, experiment_id = _experiment(engine, status=ExperimentStatus.RUNNING)
    experiment = get_experiment(engine, experiment_id)
    assert experiment is not None and experiment.variants == VARIANTS and experiment.default_variant == "A"
    assert experiment.campaign_id == campaign_id
    start_due_campaigns(engine, now=NOW)
    tasks = {t.user_id: t for t in claim_batch(engine, owner="t", now=NOW, limit=10)}
    assert tasks[2].variant == "A" and tasks[2].buttons == VARIANTS[0].buttons
    assert tasks[2].experiment_id == experiment_id
    assert tasks[1].variant == "B" and tasks[1].buttons == ()


def test_the_winner_step_runs_at_most_once_and_a_testing_campaign_stays_open(engine: Engine) -> None:
    campaign_id, experiment_id = _experiment(engine, status=ExperimentStatus.TESTING, users=range(1, 5))
    start_due_campaigns(engine, now=NOW)
    with unit_of_work(engine) as session:
        for row in session.scalars(select(Delivery).where(Delivery.campaign_id == campaign_id)):
            row.status = "sent"
    assert finish_campaigns(engine, now=NOW) == []  # the winner is still to come
    assert due_experiments(engine, now=NOW) == []
    assert due_experiments(engine, now=NOW + timedelta(hours=1)) == [experiment_id]
    winners = [NewDelivery(u, u, "Hello B", NOW, variant="B", phase="winner") for u in range(1, 9)]
    assert record_winner(engine, experiment_id, winner="B", decision="B won", rows=winners, now=NOW)
    assert not record_winner(engine, experiment_id, winner="A", decision="again", rows=winners, now=NOW)
    with unit_of_work(engine) as session:
        phases = dict(
            session.execute(
                select(Delivery.phase, func.count())
                .where(Delivery.campaign_id == campaign_id)
                .group_by(Delivery.phase)
            ).all()
        )
    assert phases == {"test": 4, "winner": 4}  # users 1-4 already had a row: planned once
    experiment = get_experiment(engine, experiment_id)
    assert experiment is not None
    assert (experiment.status, experiment.winner, experiment.decision) == ("decided", "B", "B won")


def test_a_product_goal_counts_only_that_product_event_within_the_window(engine: Engine) -> None:
    _, experiment_id = _experiment(engine, status=ExperimentStatus.RUNNING, goal="product:upgrade")
    start_due_campaigns(engine, now=NOW)
    for task in claim_batch(engine, owner="t", now=NOW, limit=10):
        mark_sent(engine, task.id, telegram_message_id=1, now=NOW)
    soon, late = NOW + timedelta(hours=2), NOW + timedelta(hours=30)
    append_events(
        engine,
        [
            EventRecord(2, soon, EventKind.PRODUCT, attributes={"event": "upgrade"}),  # A: converts
            EventRecord(4, soon, EventKind.PRODUCT, attributes={"event": "login"}),  # A: neither
            EventRecord(4, soon, EventKind.MESSAGE, intent="greet"),  # A: returns to the bot
            EventRecord(1, late, EventKind.PRODUCT, attributes={"event": "upgrade"}),  # B: after 24 h
            EventRecord(3, soon, EventKind.PRODUCT, attributes={"event": "upgrade"}),  # B: converts
        ],
    )
    experiment = get_experiment(engine, experiment_id)
    assert experiment is not None
    counts = arm_counts(engine, experiment)
    # Product events convert to a product goal but are not returns to the bot (NOT_A_RETURN).
    assert (counts["A"].sends, counts["A"].converted, counts["A"].returned) == (3, 1, 1)
    assert (counts["B"].sends, counts["B"].converted, counts["B"].returned) == (3, 1, 0)
