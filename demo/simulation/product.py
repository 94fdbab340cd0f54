"""The simulated start-up's product: accounts, plans, spend, API usage, trials, 429s and upgrades.

Most simulated users have a product account linked to their Telegram id, and what they do in
the product depends on their hidden type: power users are on paid plans, call the API a lot
and hit rate limits (bursts of `api_error_429` just before they ask the bot about rate limits);
newcomers start a trial; casual askers sit on the free plan. Upgrades follow bot interactions:
a user on a trial or the free plan who asks about pricing upgrades a few hours later with a
type-dependent probability, so the log holds the rule {asked pricing} → {product:upgrade} for
the analytics to find. Everything is drawn from the population's seed, and written through the
store's product path (`store.product.ingest` and `link_account`), the one the HTTP API uses.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import numpy as np
from sqlalchemy import Engine, select

from demo.simulation.behaviour import TYPES
from demo.simulation.population import Population
from store.campaign_reports import first_returns
from store.conversions import goal_conversions, set_campaign_goal
from store.db import unit_of_work
from store.models import Delivery, Event
from store.product import LinkSource, ProductMessage, ingest, link_account, type_trait, upsert_traits

__all__ = [
    "PRODUCT_KEY",
    "ProductHistory",
    "UserFacts",
    "campaign_returns",
    "plan_product",
    "read_facts",
    "upgrade_goal",
    "upgrades_after_returns",
    "write_product_history",
]

logger = logging.getLogger(__name__)

PRODUCT_KEY = "demo-product"
"""The ingest key id the simulated product's calls are stored under (their messageIds are unique)."""
LINK_SHARE = 0.85
_PLANS: dict[str, tuple[tuple[str, float], ...]] = {
    "power_user": (("pro", 0.6), ("team", 0.4)),
    "casual_asker": (("free", 1.0),),
    "socialite": (("free", 0.8), ("pro", 0.2)),
    "newcomer": (("trial", 1.0),),
    "drifting": (("free", 0.7), ("pro", 0.3)),
}
_SPEND_LOG_MEAN = {"free": 0.0, "trial": 0.0, "pro": 4.5, "team": 6.5}
_API_CALLS = {  # log-normal (mean of log, sd) of API calls in the last 30 days
    "power_user": (9.0, 0.5),
    "casual_asker": (5.0, 0.8),
    "socialite": (4.0, 0.8),
    "newcomer": (6.0, 0.7),
    "drifting": (3.5, 0.8),
}
TRIAL_SHARE = {"newcomer": 1.0, "casual_asker": 0.4}
"""Who starts a trial (newcomers at their first visit, some casual askers at some point)."""
UPGRADE_AFTER_PRICING = {"trial": 0.75, "free": 0.2}
"""P(upgrade) of a user on this plan who asks about pricing."""
BURST_SHARE = 0.35
"""Share of rate-limit questions preceded by a burst of 429s."""
UPGRADE_IF_RETURNED = 0.35
UPGRADE_IF_SILENT = 0.02


@dataclass(frozen=True)
class UserFacts:
    """What the bot's log says about one simulated user: first event and question times."""

    first: datetime
    asked: Mapping[str, tuple[datetime, ...]] = field(default_factory=dict)


@dataclass(frozen=True)
class ProductHistory:
    """The simulated product data: links, traits per account and product calls."""

    links: dict[str, int]
    traits: dict[str, dict[str, object]]
    calls: list[ProductMessage]

    def summary(self, n_users: int) -> dict[str, object]:
        """Linked users, plans and product events by name, for the demo's summary."""
        plans = Counter(str(t["plan"]) for t in self.traits.values())
        events = Counter(str(c.event) for c in self.calls)
        return {
            "users": n_users,
            "linked": len(self.links),
            "logged": sum(1 for c in self.calls if c.account_id in self.links),
            "plans": dict(sorted(plans.items())),
            "events": dict(sorted(events.items())),
        }


def _choice(rng: np.random.Generator, options: tuple[tuple[str, float], ...]) -> str:
    names = [name for name, _ in options]
    weights = np.array([weight for _, weight in options])
    return str(names[int(rng.choice(len(names), p=weights / weights.sum()))])


def plan_product(
    population: Population,
    facts: Mapping[int, UserFacts],
    *,
    window_start: datetime,
    until: datetime | None = None,
) -> ProductHistory:
    """Draw every simulated user's account, traits and product events from their bot history.

    Pure: the same population and facts give the same product, call for call. Events that
    would fall at or after `until` (an upgrade hours after a question asked just before it)
    are left out: the history ends there.
    """
    rng = np.random.default_rng([population.seed, 7])
    links: dict[str, int] = {}
    traits: dict[str, dict[str, object]] = {}
    calls: list[ProductMessage] = []
    for row in range(len(population)):
        user = int(population.ids[row])
        kind = TYPES[int(population.type_index[row])].name
        draws = rng.random(4)
        known = facts.get(user)
        if known is None or draws[0] >= LINK_SHARE:
            continue
        account = f"acct-{user}"
        links[account] = user
        plan = _choice(rng, _PLANS[kind])
        mean, sd = _API_CALLS[kind]
        signup = known.first - timedelta(days=float(rng.uniform(0, 400)) if kind != "newcomer" else 0.0)

        def track(name: str, at: datetime, account: str = account) -> None:
            calls.append(ProductMessage("track", account, at, f"sim-{account}-{len(calls)}", event=name))

        trial_at: datetime | None = None
        if draws[1] < TRIAL_SHARE.get(kind, 0.0):
            trial_at = (
                known.first + timedelta(minutes=5)
                if kind == "newcomer"
                else max(window_start, known.first + timedelta(days=float(rng.uniform(0, 20))))
            )
            plan = "trial"
            track("trial_started", trial_at)
        for asked_at in known.asked.get("rate_limits", ()):
            if rng.random() < BURST_SHARE:
                for burst in range(int(rng.integers(2, 4))):
                    track("api_error_429", asked_at - timedelta(minutes=10 - 2 * burst))
        pricing = [t for t in known.asked.get("pricing", ()) if trial_at is None or t > trial_at]
        if pricing and plan in UPGRADE_AFTER_PRICING and draws[2] < UPGRADE_AFTER_PRICING[plan]:
            upgrade_at = pricing[0] + timedelta(hours=float(rng.uniform(1, 12)))
            if until is None or upgrade_at < until:  # the plan traits are as of `until`
                track("upgrade", upgrade_at)
                plan = "pro"
        spend = float(np.exp(rng.normal(_SPEND_LOG_MEAN[plan], 0.6))) if _SPEND_LOG_MEAN[plan] else 0.0
        traits[account] = {
            "plan": plan,
            "spend": round(spend, 2),
            "api_calls_30d": int(np.exp(rng.normal(mean, sd))),
            "signup_at": signup.replace(microsecond=0).isoformat(),
        }
    if until is not None:
        calls = [c for c in calls if c.ts < until]
    calls.sort(key=lambda c: c.ts)
    return ProductHistory(links, traits, calls)


def read_facts(
    engine: Engine, *, until: datetime, intents: Collection[str] = ("pricing", "rate_limits")
) -> dict[int, UserFacts]:
    """First event and the times of the `intents` questions of every user, from the store."""
    first: dict[int, datetime] = {}
    asked: dict[int, dict[str, list[datetime]]] = {}
    with unit_of_work(engine) as session:
        rows = session.execute(
            select(Event.user_id, Event.ts, Event.intent)
            .where(Event.user_id.is_not(None), Event.ts < until)
            .order_by(Event.user_id, Event.ts)
        )
        for user_id, ts, intent in rows:
            user = int(user_id or 0)
            first.setdefault(user, ts)
            if intent in intents:
                asked.setdefault(user, {}).setdefault(str(intent), []).append(ts)
    return {
        user: UserFacts(at, {k: tuple(v) for k, v in asked.get(user, {}).items()})
        for user, at in first.items()
    }


def write_product_history(
    engine: Engine, population: Population, *, start: datetime, until: datetime
) -> ProductHistory:
    """Plan the product from the stored bot history before `until` and store it: links, traits, events.

    Traits are stamped at `until` (as a nightly identify would send them); events keep their
    simulated times and enter the log through the links, as the HTTP API's calls do.
    """
    history = plan_product(population, read_facts(engine, until=until), window_start=start, until=until)
    with unit_of_work(engine) as session:
        for account, user in history.links.items():
            link_account(session, account, user, source=LinkSource.IMPORT, now=until)
            typed = [type_trait(name, value) for name, value in history.traits[account].items()]
            upsert_traits(session, account, typed, until)
    report = ingest(engine, history.calls, key_id=PRODUCT_KEY, now=until)
    logger.info(
        "simulated product: %d linked accounts, %d product events (%d logged)",
        len(history.links), len(history.calls), report.logged,
    )  # fmt: skip
    return history


def upgrades_after_returns(
    engine: Engine,
    history: ProductHistory,
    returned: Mapping[int, datetime | None],
    *,
    seed: int,
) -> int:
    """Users of a campaign (pushed or holdout) who upgrade after it: likely when they came back.

    `returned` maps each campaign user to the time they came back (None: they did not). A user
    who returned upgrades within the hour with probability `UPGRADE_IF_RETURNED` if their plan
    is a trial or free one; one who did not, with `UPGRADE_IF_SILENT`, a day later. The push
    matters only through the return, so the conversion uplift against the holdout is earned.
    """
    rng = np.random.default_rng([seed, 11])
    accounts = {user: account for account, user in history.links.items()}
    upgraded = {c.account_id for c in history.calls if c.event == "upgrade"}
    calls: list[ProductMessage] = []
    now = datetime.now(UTC)
    for user in sorted(returned):
        account = accounts.get(user)
        draw = rng.random()
        if account is None or account in upgraded or history.traits[account]["plan"] not in ("free", "trial"):
            continue
        back = returned[user]
        if back is not None and draw < UPGRADE_IF_RETURNED:
            at = back + timedelta(minutes=30)
        elif back is None and draw < UPGRADE_IF_SILENT:
            at = now + timedelta(hours=6)
        else:
            continue
        calls.append(ProductMessage("track", account, at, f"sim-upgrade-{account}", event="upgrade"))
    if calls:
        ingest(engine, calls, key_id=PRODUCT_KEY, now=now)
    return len(calls)


def linked_users(history: ProductHistory) -> Sequence[int]:
    """The Telegram ids with a product account."""
    return sorted(history.links.values())


def campaign_returns(engine: Engine, campaign_id: int, window: timedelta) -> dict[int, datetime | None]:
    """When each sent or holdout user of a campaign came back to the bot within `window` (None: not)."""
    with unit_of_work(engine) as session:
        rows: list[tuple[int, int, datetime]] = []
        for key, user, status, sent, due in session.execute(
            select(Delivery.id, Delivery.user_id, Delivery.status, Delivery.sent_at, Delivery.due_at).where(
                Delivery.campaign_id == campaign_id,
                (Delivery.status == "sent")
                | ((Delivery.status == "skipped") & (Delivery.reason == "holdout")),
            )
        ):
            reference = sent if status == "sent" else due
            if reference is not None:
                rows.append((int(key), int(user), reference))
        hits = first_returns(session, rows, window)
    return {user: hits[key] for key, user, _ in rows}


def upgrade_goal(engine: Engine, campaign_id: int, window: timedelta) -> dict[str, object]:
    """Give the campaign the goal `product:upgrade` and count its conversions, pushed vs holdout."""
    with unit_of_work(engine) as session:
        set_campaign_goal(session, campaign_id, "product:upgrade", window)
    with unit_of_work(engine) as session:
        counts = goal_conversions(session, campaign_id, "product:upgrade", window)
    return {
        "goal": counts.goal,
        "window_days": window.total_seconds() / 86400.0,
        "pushed": counts.sent,
        "pushed_converted": counts.sent_converted,
        "pushed_rate": round(counts.sent_converted / counts.sent, 4) if counts.sent else None,
        "holdout": counts.holdout,
        "holdout_converted": counts.holdout_converted,
        "holdout_rate": round(counts.holdout_converted / counts.holdout, 4) if counts.holdout else None,
    }
