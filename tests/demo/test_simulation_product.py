"""The simulated product: accounts, plans by hidden type, 429 bursts, upgrades after pricing questions."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

from demo.simulation import Population, make_population
from demo.simulation.behaviour import TYPES
from demo.simulation.product import LINK_SHARE, UserFacts, plan_product

START = datetime(2026, 1, 1, tzinfo=UTC)


def _facts(n: int) -> tuple[Population, dict[int, UserFacts]]:
    population = make_population(n, days=60, seed=5)
    facts = {}
    for row, user in enumerate(population.ids.tolist()):
        first = START + timedelta(days=row % 30)
        asked = {
            "pricing": (first + timedelta(days=2),) if row % 2 == 0 else (),
            "rate_limits": (first + timedelta(days=3),),
        }
        facts[int(user)] = UserFacts(first, asked)
    return population, facts


def test_the_product_is_deterministic_and_mostly_linked() -> None:
    population, facts = _facts(400)
    first = plan_product(population, facts, window_start=START)
    again = plan_product(population, facts, window_start=START)
    assert first == again
    assert abs(len(first.links) / 400 - LINK_SHARE) < 0.06
    assert set(first.links.values()) <= set(facts)


def test_plans_and_usage_follow_the_hidden_type() -> None:
    population, facts = _facts(400)
    product = plan_product(population, facts, window_start=START)
    types = {int(u): TYPES[int(k)].name for u, k in zip(population.ids, population.type_index, strict=True)}
    plans: dict[str, Counter[str]] = {}
    calls: dict[str, list[float]] = {}
    for account, user in product.links.items():
        plans.setdefault(types[user], Counter())[str(product.traits[account]["plan"])] += 1
        calls.setdefault(types[user], []).append(float(product.traits[account]["api_calls_30d"]))
    assert set(plans["power_user"]) <= {"pro", "team"}
    assert plans["casual_asker"]["free"] > 0 and "team" not in plans["casual_asker"]
    median = {kind: sorted(v)[len(v) // 2] for kind, v in calls.items()}
    assert median["power_user"] > 10 * median["socialite"]


def test_upgrades_follow_pricing_questions_and_429s_precede_rate_limit_questions() -> None:
    population, facts = _facts(400)
    product = plan_product(population, facts, window_start=START)
    users = {account: user for account, user in product.links.items()}
    upgrades = [c for c in product.calls if c.event == "upgrade"]
    assert upgrades
    for call in upgrades:
        asked = facts[users[call.account_id]].asked["pricing"]
        assert asked and asked[0] < call.ts <= asked[0] + timedelta(hours=12)
        assert product.traits[call.account_id]["plan"] == "pro"
    bursts = [c for c in product.calls if c.event == "api_error_429"]
    assert bursts
    for call in bursts:
        question = facts[users[call.account_id]].asked["rate_limits"][0]
        assert question - timedelta(minutes=10) <= call.ts < question
    assert [c.ts for c in product.calls] == sorted(c.ts for c in product.calls)
    assert len({c.message_id for c in product.calls}) == len(product.calls)
