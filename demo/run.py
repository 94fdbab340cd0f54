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
from demo.experiment import DEFAULT_EXPERIMENT_USERS, ExperimentDesign, run_experiment
from demo.simulation import Population, iter_actions, make_population, write_history
from demo.simulation.activity import ActionBatch
from demo.simulation.behaviour import action_index
from demo.simulation.bulk import BulkReport
from demo.simulation.driver import CommunityDriver, PlayReport
from demo.simulation.measure import compare_sequence_models, segment_agreement, segments_vs_types
from demo.simulation.product import (
    ProductHistory,
    campaign_returns,
    upgrade_goal,
    upgrades_after_returns,
    write_product_history,
)
from demo.simulation.pushes import PushRound, activate_model, broadcast, push_round, push_targets, reengage
from fakeapi import DEFAULT_TOKEN, LocalBotAPI
from scheduler import SchedulerService
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
        experiment_users: Simulated users of the message experiment's own audience (see
            `demo.experiment`: the 400-user community is far too small to tell variants apart).
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
    experiment_users: int = DEFAULT_EXPERIMENT_USERS


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
    experiment: dict[str, Any] = field(default_factory=dict)
    """The message experiment: per-arm figures, the decision, and the simulator's truth."""
    wall_s: float = 0.0
    product: dict[str, Any] = field(default_factory=dict)
    """Linked accounts, plans, product events, rules on product data, the upgrade goal's conversions."""


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
            # Its pushes must go out within the run, not at each user's best hour tomorrow; the
            # send-time comparison is measured by the demo's experiment instead.
            "best_time_sends": False,
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


@dataclass(frozen=True)
class _Window:
    """Where the simulated window sits in wall-clock time: history before `now`, live after."""

    now: datetime
    start: datetime
    live_from: int
    live_seconds: int

    @classmethod
    def ending_live(cls, config: DemoConfig) -> _Window:
        """The window whose last `live_days` start now."""
        now = datetime.now(UTC).replace(microsecond=0)
        live_seconds = int(config.live_days * _DAY)
        start = now - timedelta(seconds=config.days * _DAY - live_seconds)
        return cls(now=now, start=start, live_from=int(now.timestamp()), live_seconds=live_seconds)


@dataclass
class _Run:
    """What the steps of one demo run share: the users, the server, the store, the timings."""

    config: DemoConfig
    progress: DemoProgress
    population: Population
    truth: dict[int, str]
    window: _Window
    api: LocalBotAPI
    settings: Settings
    engine: Engine
    timings: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class _LogFigures:
    """What the store holds once everything has run."""

    events_total: int
    events_live: int
    by_kind: dict[str, int]
    rules: list[str]
    segments: list[dict[str, Any]]
    product_rules: list[str]


def _clear_previous_run(config: DemoConfig) -> None:
    """Remove the database and spool an earlier run left in the output directory."""
    data_dir = config.out / "data"
    if (data_dir / "rapport.db").exists():
        for suffix in ("", "-wal", "-shm"):
            (data_dir / f"rapport.db{suffix}").unlink(missing_ok=True)
    shutil.rmtree(data_dir / "spool", ignore_errors=True)


async def _history(run: _Run) -> BulkReport:
    """Step 1: the simulated history before the live days goes straight into the store."""
    run.progress.stage("simulated history → store", total=run.config.users)
    with _timed(run.timings, "history"):
        return await asyncio.to_thread(
            write_history,
            run.engine,
            run.population,
            start=run.window.start,
            until=run.window.now,
            progress=run.progress.advance,
        )


async def _product(run: _Run) -> ProductHistory:
    """Step 1b: the start-up's product: linked accounts, traits and product events from the history."""
    run.progress.stage("simulated product: accounts, plans, trials, 429s, upgrades")
    with _timed(run.timings, "product"):
        return await asyncio.to_thread(
            write_product_history, run.engine, run.population, start=run.window.start, until=run.window.now
        )


async def _upgrades(run: _Run, product: ProductHistory, round_: PushRound) -> dict[str, Any]:
    """Step 6b: users of the re-engagement campaign upgrade (likely when they came back); conversions."""
    window = timedelta(days=run.config.horizon_days)
    campaign_id = round_.reengagement.campaign_id
    with _timed(run.timings, "upgrades"):
        returned = await asyncio.to_thread(campaign_returns, run.engine, campaign_id, window)
        await asyncio.to_thread(upgrades_after_returns, run.engine, product, returned, seed=run.config.seed)
        return await asyncio.to_thread(upgrade_goal, run.engine, campaign_id, window)


async def _start_bot(run: _Run) -> tuple[Application, SchedulerService]:  # type: ignore[type-arg]
    """The real bot with its scheduler service, against the local server and the demo's store."""
    run.progress.stage("starting the bot (NLU, knowledge base)")
    with _timed(run.timings, "bot_start"):
        application = await asyncio.to_thread(build_application, run.settings, engine=run.engine)
        scheduler = attach_scheduler(application, run.settings)
    return application, scheduler


async def _open_community(run: _Run, live: ActionBatch) -> CommunityDriver:
    """The community as the live days find it: members, blocked drifters, an open poll."""
    config = run.config
    driver = CommunityDriver(run.api, run.population, manager_id=MANAGER_ID, seed=config.seed)
    joining = {int(run.population.ids[r]) for r, a in zip(live.row, live.action, strict=True) if a == _JOIN}
    await asyncio.to_thread(driver.setup, joining=joining)
    _block_some_drifters(driver, run.population, config.days - int(config.live_days), config.seed)
    await asyncio.to_thread(driver.open_poll, "Which meetup topic next?", ["Agents", "RAG", "Evals"])
    return driver


async def _live_play(
    run: _Run,
    driver: CommunityDriver,
    live: ActionBatch,
    application: Application,  # type: ignore[type-arg]
) -> PlayReport:
    """Step 2: the last days played by simulated users through the local server to the bot."""
    run.progress.stage(f"live: {run.config.live_days:g} simulated days through the bot", total=len(live))
    with _timed(run.timings, "live"):
        played: PlayReport = await asyncio.to_thread(
            driver.play,
            live,
            window_start_ts=run.window.live_from,
            window_s=run.window.live_seconds,
            wall_s=run.config.live_wall_s,
            progress=run.progress.advance,
        )
        await _drain(run.api, application)
    return played


async def _analytics(run: _Run) -> float:
    """Step 3: segments and rules; returns their adjusted Rand index against the hidden types."""
    run.progress.stage("analytics: segments and rules")
    with _timed(run.timings, "analytics"):
        result = await asyncio.to_thread(
            run_analytics,
            run.engine,
            config=AnalyticsConfig(
                window_days=run.config.days,
                random_state=run.config.seed,
                exclude_users=tuple(run.settings.admin_ids),
            ),
            as_of=datetime.now(UTC),
        )
    ari, _compared = segment_agreement(run.engine, result.run_id, run.truth)
    return ari


async def _models(run: _Run) -> tuple[dict[str, dict[str, float]], Path]:
    """Step 4: the LSTM against Markov and popularity on held-out days; the LSTM is saved."""
    run.progress.stage("LSTM vs Markov vs popularity", total=3)
    with _timed(run.timings, "models"):
        return await asyncio.to_thread(
            _models_table,
            run.engine,
            run.config,
            run.population,
            run.settings,
            datetime.now(UTC),
            run.progress,
        )


async def _pushes(
    run: _Run,
    driver: CommunityDriver,
    scheduler: SchedulerService,
    application: Application,  # type: ignore[type-arg]
    models: dict[str, dict[str, float]],
    lstm_dir: Path,
) -> PushRound:
    """Steps 5 and 6: the manager's broadcast, then re-engagement with its holdout; users respond."""
    run.progress.stage("broadcast, re-engagement with holdout, users respond")
    segments_now = current_segments(run.engine)
    # The largest learned segment; "Everyone" when analytics found none to offer.
    target = segments_now[0].name if segments_now else "Everyone"
    targets_of = push_targets(BROADCAST_TEXT)
    horizon = run.config.horizon_days

    async def settle() -> None:
        await _drain(run.api, application)

    with _timed(run.timings, "pushes"):
        baselines = {name: m for name, m in models.items() if name != "lstm"}
        await activate_model(run.engine, lstm_dir, {**models["lstm"], "baselines": baselines})
        sent = await broadcast(
            driver,
            run.engine,
            segment=target,
            text=BROADCAST_TEXT,
            targets_of=targets_of,
            horizon_days=horizon,
            settle=settle,
        )
        job = await reengage(
            driver, run.engine, scheduler, targets_of=targets_of, horizon_days=horizon, settle=settle
        )
        return await push_round(run.engine, sent, job, horizon_days=horizon)


def _product_rules(engine: Engine, n: int = 5) -> list[str]:
    """The strongest rules ending in a product event or trait, those without segment items first.

    A rule that concludes segment membership restates how segments were made (the report hides
    those too); one ending in `product:upgrade` says what leads there.
    """
    rules = [
        r
        for r in top_rule_records(engine, 500)
        if any(item.startswith(("product:", "trait:")) for item in r.consequents)
    ]
    plain = [r for r in rules if not any(i.startswith("segment:") for i in (*r.antecedents, *r.consequents))]
    rest = [r for r in rules if r not in plain]
    return [r.sentence for r in (plain + rest)[:n]]


def _log_figures(run: _Run) -> _LogFigures:
    """Count what the store holds: events (all, live, by kind), top rules, segments vs types."""
    engine = run.engine
    kinds = sorted({e.kind for e in iter_events(engine)})
    return _LogFigures(
        events_total=count_events(engine),
        events_live=sum(1 for _ in iter_events(engine, since=run.window.now)),
        by_kind={kind: count_events(engine, kind=kind) for kind in kinds},
        rules=[r.sentence for r in top_rule_records(engine, 5)],
        segments=segments_vs_types(engine, run.truth),
        product_rules=_product_rules(engine),
    )


async def _analytics_report(run: _Run) -> None:
    """The analytics report (HTML, JSON, CSV) beside the demo's own."""
    run.progress.stage("analytics report")
    with _timed(run.timings, "analytics_report"):
        await asyncio.to_thread(write_report, run.engine, run.config.out / "analytics")


async def _experiment(run: _Run) -> dict[str, Any]:
    """Step 8: the message experiment on its own simulated audience (`demo.experiment`)."""
    run.progress.stage(f"message experiment: 3 variants to {run.config.experiment_users} simulated users")
    with _timed(run.timings, "experiment"):
        return await asyncio.to_thread(
            run_experiment,
            run.config.out / "data" / "experiment.db",
            ExperimentDesign(users=run.config.experiment_users),
            seed=run.config.seed,
            now=datetime.now(UTC),
        )


def _method(config: DemoConfig, played: PlayReport) -> list[str]:
    """How the figures were made, in sentences the report prints."""
    return [
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
        "users instead of the default 10%, so both sides of the comparison have users; its pushes go "
        "out at once, not at each user's best hour (RAPPORT_BEST_TIME_SENDS off)",
        f"the message experiment went to {config.experiment_users} simulated users of its own, in "
        "data/experiment.db: arms by Rapport's stable hash, deliveries and conversions in the store, "
        "read back and judged by Rapport's experiment statistics; who converts is the simulator's "
        "hidden truth (variant multipliers and hour responsiveness). The 400-user community has about "
        "130 users per variant, far too few to tell a 1.5x variant from noise",
        "most users have a linked product account whose plan, spend, API usage, trials and bursts "
        "of 429 errors depend on their hidden type; trial and free users who ask about pricing "
        "often upgrade; after the re-engagement push, a user who came back upgrades with "
        "probability 0.35 and one who did not with 0.02, pushed or holdout alike, so the upgrade "
        "uplift comes only from the pushes' returns",
    ]


def _summary(
    run: _Run,
    *,
    history: BulkReport,
    played: PlayReport,
    ari: float,
    models: dict[str, dict[str, float]],
    round_: PushRound,
    figures: _LogFigures,
    started: float,
    experiment: dict[str, Any],
    product: dict[str, Any] | None = None,
) -> DemoSummary:
    """Step 7: every figure of the run in one summary."""
    config = run.config
    return DemoSummary(
        users=config.users,
        days=config.days,
        seed=config.seed,
        events_total=figures.events_total,
        events_history=history.events + int((product or {}).get("logged", 0)),
        events_live=figures.events_live,
        events_by_kind=figures.by_kind,
        live={
            "actions_sent": played.sent,
            "actions_skipped": played.skipped,
            "wall_s": round(played.wall_s, 1),
        },
        hidden_types=run.population.type_counts(),
        segments=figures.segments,
        adjusted_rand_index=round(ari, 4),
        rules=figures.rules,
        models=models,
        pushes=_pushes_json(round_),
        timings_s=run.timings,
        skipped_steps=[],
        method=_method(config, played),
        analytics_report="analytics/report.html",
        experiment=experiment,
        wall_s=round(time.perf_counter() - started, 1),
        product={**(product or {}), "rules": figures.product_rules},
    )


async def _demo(config: DemoConfig, base: Settings, progress: DemoProgress) -> DemoSummary:
    """History, live play, analytics, models, broadcast, re-engagement, then the summary."""
    started = time.perf_counter()
    _clear_previous_run(config)
    window = _Window.ending_live(config)
    population = make_population(config.users, days=config.days, seed=config.seed)
    api = LocalBotAPI(DEFAULT_TOKEN)
    with api.serve_in_thread():
        settings = demo_settings(base, config, api)
        engine = create_db_engine(settings.resolved_database_url)
        upgrade(engine)
        run = _Run(config, progress, population, population.true_types(), window, api, settings, engine)
        history = await _history(run)
        product = await _product(run)
        live = _split_live(population, window.start, window.live_from)
        application, scheduler = await _start_bot(run)
        async with running(application):
            if not await scheduler.wait_active(30.0):
                raise RuntimeError("the scheduler did not take its lease within 30 s")
            driver = await _open_community(run, live)
            played = await _live_play(run, driver, live, application)
            ari = await _analytics(run)
            models, lstm_dir = await _models(run)
            round_ = await _pushes(run, driver, scheduler, application, models, lstm_dir)
            goal = await _upgrades(run, product, round_)
        figures = _log_figures(run)
        await _analytics_report(run)
        experiment = await _experiment(run)
        engine.dispose()
    return _summary(
        run,
        history=history,
        played=played,
        ari=ari,
        models=models,
        round_=round_,
        figures=figures,
        started=started,
        experiment=experiment,
        product={**product.summary(config.users), "upgrade_goal": goal},
    )


def run_demo(config: DemoConfig, settings: Settings, *, progress: DemoProgress | None = None) -> DemoSummary:
    """Run the whole demo and return its figures (the caller writes the report)."""
    return asyncio.run(_demo(config, settings, progress or _Quiet()))
