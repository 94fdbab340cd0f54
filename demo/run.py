"""`rapport demo`: the whole loop on a simulated community, against a local Bot API server.

Most of the simulated history goes straight into the store at simulated timestamps (the
bulk generator); the last `live_days` are played live by simulated Telegram users through
the local Bot API server to the real bot, which answers, runs the NLU and logs events
itself. Then analytics, the LSTM against its baselines, a broadcast and the re-engagement
job run on that store, the users react, and the report is written.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from sqlalchemy import Engine
from telegram.ext import Application

from analytics import AnalyticsConfig, run_analytics, top_rule_records, write_report
from analytics.insights import current_segments
from bot.app import attach_scheduler, build_application, services_for
from bot.runner import running
from demo.simulation import Population, iter_actions, make_population, write_history
from demo.simulation.activity import ActionBatch
from demo.simulation.behaviour import action_index
from demo.simulation.driver import CommunityDriver, PlayReport
from demo.simulation.measure import compare_sequence_models, segment_agreement, segments_vs_types
from demo.simulation.pushes import PushRound, run_pushes
from fakeapi import DEFAULT_TOKEN, LocalBotAPI
from store import Settings, count_events, create_db_engine, iter_events, upgrade

__all__ = ["MANAGER_ID", "DemoConfig", "DemoProgress", "DemoSummary", "run_demo"]

logger = logging.getLogger(__name__)

MANAGER_ID = 700_000_000
"""The simulated community manager (an admin id in the demo's settings)."""
_DAY = 86_400
_JOIN = action_index("join")
BROADCAST_TEXT = (
    "Community meetup this Thursday 18:00 UTC: live demos of agents built on rapport-pro, "
    "and an open Q&A with the team. Reply here to get the link!"
)


class DemoProgress(Protocol):
    """Where the demo reports progress (the CLI draws rich progress bars)."""

    def stage(self, name: str, total: int | None = None) -> None:
        """A new stage starts; `total` steps if known."""

    def advance(self, steps: int = 1) -> None:
        """Steps of the current stage are done."""


class _Quiet:
    def stage(self, name: str, total: int | None = None) -> None:
        logger.info("demo: %s", name)

    def advance(self, steps: int = 1) -> None:
        return None


@dataclass(frozen=True)
class DemoConfig:
    """Size and shape of one demo run.

    Attributes:
        users: Simulated users.
        days: Simulated days of history.
        seed: Seed of everything random.
        out: Output directory (report, summary, database, models).
        live_days: The last days played live through the real bot.
        live_wall_s: Wall seconds those live days are squeezed into.
        lstm_epochs: Training epochs of the follow-up LSTM.
        holdout_days: Days held out to evaluate next-event models.
        horizon_days: Days after the pushes in which a return counts.
    """

    users: int = 400
    days: int = 60
    seed: int = 0
    out: Path = Path("demo-output")
    live_days: float = 2.0
    live_wall_s: float = 40.0
    lstm_epochs: int = 25
    holdout_days: float = 5.0
    horizon_days: float = 3.0


@dataclass(frozen=True)
class DemoSummary:
    """Every figure the demo prints and writes to summary.json."""

    users: int
    days: int
    seed: int
    events_total: int
    events_history: int
    events_live: int
    events_by_kind: dict[str, int]
    live: dict[str, Any]
    hidden_types: dict[str, int]
    segments: list[dict[str, Any]]
    adjusted_rand_index: float
    rules: list[str]
    models: dict[str, dict[str, float]]
    pushes: dict[str, Any]
    timings_s: dict[str, float]
    skipped_steps: list[str] = field(default_factory=list)
    method: list[str] = field(default_factory=list)
    analytics_report: str | None = None
    wall_s: float = 0.0


def demo_settings(base: Settings, config: DemoConfig, api: LocalBotAPI) -> Settings:
    """The demo's settings: the user's own, pointed at the local server and the demo's store."""
    data_dir = config.out / "data"
    return base.model_copy(
        update={
            "telegram_bot_token": api.token,
            "telegram_api_base_url": api.base_url,
            "telegram_api_file_url": api.base_file_url,
            "admin_ids": [MANAGER_ID],
            "data_dir": data_dir,
            "database_url": f"sqlite:///{data_dir / 'rapport.db'}",
            "store_text": True,
            "nlu_url": None,
            "flood_window_s": 10.0,
            # The demo runs at whatever hour it is started: no quiet hours, so every due push
            # goes out now, and a larger holdout so the comparison has users on both sides.
            "quiet_hours_start": 0,
            "quiet_hours_end": 0,
            "holdout_share": 0.3,
        }
    )


@contextmanager
def _timed(timings: dict[str, float], name: str) -> Iterator[None]:
    started = time.perf_counter()
    try:
        yield
    finally:
        timings[name] = round(time.perf_counter() - started, 2)


def _split_live(population: Population, start: datetime, live_from: int) -> ActionBatch:
    parts = [b.select(b.ts >= live_from) for b in iter_actions(population, start=start)]
    return ActionBatch(
        row=np.concatenate([p.row for p in parts]),
        ts=np.concatenate([p.ts for p in parts]),
        action=np.concatenate([p.action for p in parts]),
        in_group=np.concatenate([p.in_group for p in parts]),
        rating=np.concatenate([p.rating for p in parts]),
    )


async def _drain(api: LocalBotAPI, application: Application, *, quiet_s: float = 0.6) -> None:  # type: ignore[type-arg]
    """Wait until the bot has fetched, answered and logged everything sent so far."""
    services = services_for(application)
    last: tuple[int, int] | None = None
    for _ in range(400):
        await asyncio.sleep(quiet_s)
        now = (len(api.sent), services.writer.written)
        if not api.pending_updates and application.update_queue.empty() and now == last:
            break
        last = now
    await asyncio.to_thread(services.writer.flush)


def _block_some_drifters(driver: CommunityDriver, population: Population, live_day: int, seed: int) -> None:
    """A third of long-gone drifting users blocked the bot: half while it was not running."""
    rng = np.random.default_rng([seed, 6])
    gone = [p.id for p in population.personas() if p.churn_day is not None and p.churn_day < live_day - 7]
    blockers = [u for u in gone if rng.random() < 0.33]
    half = len(blockers) // 2
    driver.block(blockers[:half], silently=True)
    driver.block(blockers[half:], silently=False)


def _models_table(
    engine: Engine,
    config: DemoConfig,
    population: Population,
    settings: Settings,
    end: datetime,
    progress: DemoProgress,
) -> tuple[dict[str, dict[str, float]], Path]:
    model_dir = settings.resolved_followup_model_dir / f"demo-{config.seed}"
    comparison = compare_sequence_models(
        engine,
        cutoff=end - timedelta(days=config.holdout_days),
        users=set(population.true_types()),
        lstm_params={
            "epochs": config.lstm_epochs,
            "units": 128,
            "embedding_dim": 64,
            "max_len": 50,
            "batch_size": 128,
            "learning_rate": 3e-3,
            "patience": 4,
            "random_state": config.seed,
        },
        save_dir=model_dir,
        step=lambda _name: progress.advance(),
    )
    table = {
        name: {
            "n": float(report.n),
            "hr@1": round(report.hit_rate[1], 4),
            "hr@5": round(report.hit_rate[5], 4),
            "hr@10": round(report.hit_rate[10], 4),
            "ndcg@10": round(report.ndcg[10], 4),
            "mrr": round(report.mrr, 4),
        }
        for name, report in comparison.reports.items()
    }
    return table, model_dir


def _pushes_json(round_: PushRound) -> dict[str, Any]:
    return {
        "campaigns": {
            f"{o.kind} #{o.campaign_id} ({o.segment})": {
                **o.counts.by_status,
                **{f"skipped:{k}": v for k, v in o.counts.skipped_by_reason.items()},
            }
            for o in (round_.broadcast, round_.reengagement)
        },
        "details": [round_.broadcast.as_json(), round_.reengagement.as_json()],
        "plan": round_.plan_summary,
        "simulated": {
            "answered_the_broadcast": round_.broadcast_answers,
            "answered_a_reengagement_push": len(round_.returns.responded),
            "returned_unprompted": len(round_.returns.returned_naturally),
        },
        "returns": {
            "horizon_days": round_.horizon_days,
            "pushed": round_.pushed,
            "pushed_returned": round_.pushed_returned,
            "pushed_rate": round(round_.pushed_returned / round_.pushed, 4) if round_.pushed else None,
            "holdout": round_.holdout,
            "holdout_returned": round_.holdout_returned,
            "holdout_rate": round(round_.holdout_returned / round_.holdout, 4) if round_.holdout else None,
        },
    }


async def _demo(config: DemoConfig, base: Settings, progress: DemoProgress) -> DemoSummary:
    started = time.perf_counter()
    timings: dict[str, float] = {}
    skipped: list[str] = []
    data_dir = config.out / "data"
    if (data_dir / "rapport.db").exists():
        for suffix in ("", "-wal", "-shm"):
            (data_dir / f"rapport.db{suffix}").unlink(missing_ok=True)
    shutil.rmtree(data_dir / "spool", ignore_errors=True)
    now = datetime.now(UTC).replace(microsecond=0)
    live_seconds = int(config.live_days * _DAY)
    start = now - timedelta(seconds=config.days * _DAY - live_seconds)
    live_from = int(now.timestamp())

    population = make_population(config.users, days=config.days, seed=config.seed)
    truth = population.true_types()
    api = LocalBotAPI(DEFAULT_TOKEN)
    with api.serve_in_thread():
        settings = demo_settings(base, config, api)
        engine = create_db_engine(settings.resolved_database_url)
        upgrade(engine)
        progress.stage("simulated history → store", total=config.users)
        with _timed(timings, "history"):
            history = await asyncio.to_thread(
                write_history, engine, population, start=start, until=now, progress=progress.advance
            )
        live = _split_live(population, start, live_from)
        progress.stage("starting the bot (NLU, knowledge base)")
        with _timed(timings, "bot_start"):
            application = await asyncio.to_thread(build_application, settings, engine=engine)
            scheduler = attach_scheduler(application, settings)
        async with running(application):
            if not await scheduler.wait_active(30.0):
                raise RuntimeError("the scheduler did not take its lease within 30 s")
            driver = CommunityDriver(api, population, manager_id=MANAGER_ID, seed=config.seed)
            joining = {
                int(population.ids[r]) for r, a in zip(live.row, live.action, strict=True) if a == _JOIN
            }
            await asyncio.to_thread(driver.setup, joining=joining)
            _block_some_drifters(driver, population, config.days - int(config.live_days), config.seed)
            await asyncio.to_thread(driver.open_poll, "Which meetup topic next?", ["Agents", "RAG", "Evals"])
            progress.stage(f"live: {config.live_days:g} simulated days through the bot", total=len(live))
            with _timed(timings, "live"):
                played: PlayReport = await asyncio.to_thread(
                    driver.play,
                    live,
                    window_start_ts=live_from,
                    window_s=live_seconds,
                    wall_s=config.live_wall_s,
                    progress=progress.advance,
                )
                await _drain(api, application)
            progress.stage("analytics: segments and rules")
            with _timed(timings, "analytics"):
                run = await asyncio.to_thread(
                    run_analytics,
                    engine,
                    config=AnalyticsConfig(window_days=config.days, random_state=config.seed),
                    as_of=datetime.now(UTC),
                )
            ari, _compared = segment_agreement(engine, run.run_id, truth)
            progress.stage("LSTM vs Markov vs popularity", total=3)
            with _timed(timings, "models"):
                models, lstm_dir = await asyncio.to_thread(
                    _models_table, engine, config, population, settings, datetime.now(UTC), progress
                )
            progress.stage("broadcast, re-engagement with holdout, users respond")
            segments_now = current_segments(engine)
            # The largest learned segment; "Everyone" when analytics found none to offer.
            target = segments_now[0].name if segments_now else "Everyone"
            with _timed(timings, "pushes"):
                round_ = await run_pushes(
                    driver,
                    engine,
                    scheduler,
                    segment=target,
                    text=BROADCAST_TEXT,
                    model_dir=lstm_dir,
                    model_metrics=models["lstm"],
                    horizon_days=config.horizon_days,
                    settle=lambda: _drain(api, application),
                )
            pushes = _pushes_json(round_)
        engine_events = count_events(engine)
        live_events = sum(1 for _ in iter_events(engine, since=now))
        kinds = sorted({e.kind for e in iter_events(engine)})
        by_kind = {kind: count_events(engine, kind=kind) for kind in kinds}
        rules = [r.sentence for r in top_rule_records(engine, 5)]
        segments = segments_vs_types(engine, truth)
        progress.stage("analytics report")
        with _timed(timings, "analytics_report"):
            await asyncio.to_thread(write_report, engine, config.out / "analytics")
        engine.dispose()
    return DemoSummary(
        users=config.users,
        days=config.days,
        seed=config.seed,
        events_total=engine_events,
        events_history=history.events,
        events_live=live_events,
        events_by_kind=by_kind,
        live={
            "actions_sent": played.sent,
            "actions_skipped": played.skipped,
            "wall_s": round(played.wall_s, 1),
        },
        hidden_types=population.type_counts(),
        segments=segments,
        adjusted_rand_index=round(ari, 4),
        rules=rules,
        models=models,
        pushes=pushes,
        timings_s=timings,
        skipped_steps=skipped,
        method=[
            f"days 1-{config.days - config.live_days:g} of the simulation were generated straight into "
            "the store at simulated timestamps (bulk mode, true intents, no bot)",
            f"the last {config.live_days:g} simulated days were played live through the local Bot API "
            f"server to the real bot in {played.wall_s:.0f} s; the bot logs them at wall-clock time, "
            "so they sit compressed at the end of the log",
            "the scheduler service runs in the bot's process as in `rapport run`; the demo's LSTM "
            "is made the active follow-up model, as nightly retraining would",
            "pushes, answers to them and unprompted returns are live too; return rates are counted "
            "from the event log",
            "the demo switches quiet hours off (it runs at any hour) and holds out 30% of eligible "
            "users instead of the default 10%, so both sides of the comparison have users",
        ],
        analytics_report="analytics/report.html",
        wall_s=round(time.perf_counter() - started, 1),
    )


def run_demo(config: DemoConfig, settings: Settings, *, progress: DemoProgress | None = None) -> DemoSummary:
    """Run the whole demo and return its figures (the caller writes the report)."""
    return asyncio.run(_demo(config, settings, progress or _Quiet()))
