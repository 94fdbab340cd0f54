"""Product traits and events in features, segments, names, baskets and rules."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import adjusted_rand_score
from sqlalchemy import Engine

from analytics import cluster_matrix, compute_features, user_baskets
from analytics.features import category_groups, cluster_columns
from analytics.naming import describe_segments
from analytics.rules import mine_rules, rule_sentence
from analytics.segmentation import UserSegmenter
from analytics.traits import encode_traits
from store import EventRecord, append_events
from store.analytics_queries import Table
from store.db import unit_of_work
from store.product import LinkSource, link_account, type_trait, upsert_traits

AS_OF = datetime(2026, 6, 30, 12, 0, tzinfo=UTC)
COLUMNS = ("user_id", "name", "value_type", "number", "category", "date")


def _row(user: int, name: str, value: object) -> tuple[object, ...]:
    if isinstance(value, datetime):
        return (user, name, "date", None, None, value)
    if isinstance(value, int | float):
        return (user, name, "numeric", float(value), None, None)
    return (user, name, "categorical", None, str(value), None)


def _table(*rows: tuple[object, ...]) -> Table:
    return Table(columns=COLUMNS, rows=list(rows))


def test_numbers_categories_and_dates_are_encoded() -> None:
    signup = AS_OF - timedelta(days=10)
    traits = encode_traits(
        _table(
            _row(1, "spend", 120.0),
            _row(1, "plan", "pro"),
            _row(1, "signup", signup),
            _row(2, "plan", "free"),
            _row(3, "plan", "free"),
        ),
        as_of=AS_OF,
    )
    f = traits.frame
    assert list(f.index) == [1, 2, 3]
    assert f.loc[1, "num:spend"] == 120.0
    assert np.isnan(f.loc[2, "num:spend"])  # missing stays missing, not 0
    assert f.loc[1, "age:signup"] == pytest.approx(10.0)
    assert f.loc[2, "cat:plan=free"] == 1.0 and f.loc[1, "cat:plan=free"] == 0.0
    assert traits.monetary == "spend"


def test_categories_past_the_cap_share_one_column() -> None:
    rows = [_row(u, "plan", p) for u, p in enumerate(["a"] * 4 + ["b"] * 3 + ["c", "d"], start=1)]
    traits = encode_traits(_table(*rows), as_of=AS_OF, max_categories=2)
    assert list(traits.frame.columns) == ["cat:plan=a", "cat:plan=b", "cat:plan=(other)"]
    assert traits.frame["cat:plan=(other)"].sum() == 2


def test_a_trait_with_mixed_types_keeps_the_common_type_and_says_so() -> None:
    rows = [_row(1, "plan", "pro"), _row(2, "plan", "free"), _row(3, "plan", 3)]
    traits = encode_traits(_table(*rows), as_of=AS_OF)
    assert "cat:plan=pro" in traits.frame.columns
    assert 3 not in traits.frame.index  # the number is left out, not cast to a category
    assert any("several types" in note and "numeric 1" in note for note in traits.notes)


def test_identifiers_unknown_names_and_thin_traits_are_left_out() -> None:
    rows = [_row(u, "email", f"u{u}@x.io") for u in range(1, 11)] + [_row(1, "beta", "yes")]
    traits = encode_traits(_table(*rows), as_of=AS_OF)
    assert traits.traits == ()  # email identifies people; beta: 1 of 10 linked users
    assert any("identifiers" in note for note in traits.notes)
    chosen = encode_traits(_table(*rows), as_of=AS_OF, include=["beta", "nope"])
    assert chosen.traits == ("beta",)
    assert any("'nope'" in note for note in chosen.notes)


def test_bad_caps_are_refused() -> None:
    with pytest.raises(ValueError, match="max_categories"):
        encode_traits(_table(), as_of=AS_OF, max_categories=0)


def _link(engine: Engine, account: str, user: int, **traits: object) -> None:
    with unit_of_work(engine) as session:
        link_account(session, account, user, source=LinkSource.IMPORT)
        typed = [type_trait(k, v) for k, v in traits.items()]
        upsert_traits(session, account, typed, AS_OF - timedelta(days=1))


def _messages(user: int, intent: str, n: int, days_ago: float = 1.0) -> list[EventRecord]:
    ts = AS_OF - timedelta(days=days_ago)
    return [
        EventRecord(user_id=user, chat_id=user, ts=ts + timedelta(minutes=i), kind="message", intent=intent)
        for i in range(n)
    ]


def _product(user: int, name: str, properties: dict[str, object] | None = None) -> EventRecord:
    attributes: dict[str, object] = {"source": "product", "event": name, "account_id": f"a{user}"}
    if properties is not None:
        attributes["properties"] = properties
    return EventRecord(user_id=user, ts=AS_OF - timedelta(hours=3), kind="product", attributes=attributes)


def test_linked_users_get_trait_columns_and_spend_drives_rfm(engine: Engine) -> None:
    events = [e for u in range(1, 7) for e in _messages(u, "pricing", 3)]
    events += _messages(7, "pricing", 12)  # the chattiest user spends nothing
    append_events(engine, events)
    for user, spend, plan in ((1, 500.0, "pro"), (2, 400.0, "pro"), (3, 5.0, "free")):
        _link(engine, f"a{user}", user, spend=spend, plan=plan)
    features = compute_features(engine, as_of=AS_OF)
    f = features.frame
    assert {"num:spend", "cat:plan=pro", "cat:plan=free"} <= set(f.columns)
    assert set(cluster_columns(f)) >= {"num:spend", "cat:plan=pro"}
    assert f["num:spend"].isna().sum() == 4  # users 4-7 have no account
    assert features.monetary == "trait:spend"
    assert f.loc[1, "rfm_m"] > f.loc[7, "rfm_m"]  # money, not message volume
    matrix = pd.DataFrame(cluster_matrix(f), index=f.index, columns=cluster_columns(f))
    linked = np.sign([500.0, 400.0, 5.0]) * np.log1p([500.0, 400.0, 5.0])
    assert matrix.loc[5, "num:spend"] == pytest.approx(linked.mean())  # the holders' mean, not 0
    assert matrix.loc[5, "cat:plan=pro"] == pytest.approx(2 / 3)


def test_revenue_of_product_events_is_the_money_without_a_spend_trait(engine: Engine) -> None:
    events = [e for u in (1, 2, 3) for e in _messages(u, "pricing", 2)]
    events += [
        _product(1, "Order Completed", {"revenue": 30}),
        _product(1, "Order Completed", {"revenue": 12.5}),
        _product(2, "Order Completed", {"revenue": "12.50 EUR"}),  # not a number: unknown, no error
        _product(3, "upgrade"),
    ]
    append_events(engine, events)
    features = compute_features(engine, as_of=AS_OF)
    assert features.monetary == "events:revenue"
    assert features.frame.loc[1, "monetary"] == pytest.approx(42.5)
    assert features.frame.loc[2, "monetary"] == 0.0
    assert features.product_counts.loc[1, "Order Completed"] == 2
    assert features.product_counts.loc[3, "upgrade"] == 1


def test_without_product_data_nothing_changes(engine: Engine) -> None:
    append_events(engine, _messages(1, "pricing", 2) + _messages(2, "billing", 1))
    features = compute_features(engine, as_of=AS_OF)
    assert features.monetary == "messages"
    assert not [c for c in features.frame.columns if ":" in str(c)]
    assert features.product_counts.shape[1] == 0


def test_unlinked_users_are_segmented_by_behaviour() -> None:
    """Mean-filled traits keep linked and unlinked users of one behaviour together."""
    rng = np.random.default_rng(0)
    n = 80
    behaviour = np.repeat([0, 1], n // 2)
    frame = pd.DataFrame(
        {
            "recency_days": np.where(behaviour == 0, 2.0, 25.0) + rng.normal(0, 0.5, n),
            "active_days": np.where(behaviour == 0, 12.0, 1.0) + rng.normal(0, 0.3, n),
        },
        index=pd.Index(np.arange(1, n + 1), dtype="int64", name="user_id"),
    )
    for column in cluster_columns(pd.DataFrame()):
        if column not in frame.columns:
            frame[column] = 0.0
    linked = rng.random(n) < 0.5
    frame["num:spend"] = np.where(linked, rng.lognormal(3, 0.3, n), np.nan)
    frame["cat:plan=pro"] = np.where(linked, (rng.random(n) < 0.5).astype(float), np.nan)
    labels = UserSegmenter(k_min=2, k_max=5).fit(cluster_matrix(frame)).labels_
    assert adjusted_rand_score(behaviour, labels) == 1.0
    zero_filled = frame.fillna(0.0)
    zero_labels = UserSegmenter(k_min=2, k_max=5).fit(cluster_matrix(zero_filled)).labels_
    assert adjusted_rand_score(behaviour, zero_labels) < 1.0  # zeros fake a "no account" segment


def test_names_and_descriptions_mention_the_trait_that_sets_a_segment_apart() -> None:
    frame = pd.DataFrame(
        {
            "recency_days": [1.0] * 6,
            "active_days": [10.0] * 3 + [2.0] * 3,
            "tenure_days": [90.0] * 6,
            "questions": [5.0] * 6,
            "cat:plan=pro": [1.0, 1.0, np.nan, 0.0, 0.0, np.nan],
            "num:spend": [900.0, 800.0, np.nan, 20.0, 30.0, np.nan],
        }
    )
    profiles = describe_segments(frame, np.array([0, 0, 0, 1, 1, 1]))
    by_label = {p.label: p for p in profiles}
    assert "mostly plan=pro" in by_label[0].name
    assert "100% plan=pro" in by_label[0].description
    assert by_label[0].profile["cat:plan=pro"] == 1.0  # share among members who have a plan
    assert "mostly plan" not in by_label[1].name


def test_baskets_carry_product_events_and_trait_categories(engine: Engine) -> None:
    events = []
    for user in range(1, 21):
        events += _messages(user, "pricing" if user <= 10 else "docs", 2)
        if user <= 8:
            events.append(_product(user, "upgrade"))
    append_events(engine, events)
    for user in range(1, 11):
        _link(engine, f"a{user}", user, plan="pro" if user <= 8 else "free")
    features = compute_features(engine, as_of=AS_OF)
    names = pd.Series(["all"] * features.n_users, index=features.frame.index)
    baskets = user_baskets(features, names)
    assert baskets.loc[1, "product:upgrade"] and not baskets.loc[12, "product:upgrade"]
    assert baskets.loc[1, "trait:plan=pro"] and not baskets.loc[15, "trait:plan=pro"]
    rules = mine_rules(baskets, min_support=0.2, min_confidence=0.7, min_lift=1.2)
    upgrade = [r for r in rules if r.consequents == ("product:upgrade",)]
    assert any(r.antecedents == ("intent:pricing",) for r in upgrade)
    sentence = next(r.sentence for r in upgrade if r.antecedents == ("intent:pricing",))
    assert "asked about pricing" in sentence and "did “upgrade” in the product" in sentence


def test_trait_items_are_phrased() -> None:
    sentence = rule_sentence(["trait:plan=free", "product:api_error_429"], ["intent:pricing"], 0.5, 2.0, 0.1)
    assert sentence.startswith("Of users who have plan=free and did “api_error_429” in the product, 50%")


def test_product_events_leave_the_telegram_behaviour_columns_alone(engine: Engine) -> None:
    """A user busy in the product but silent in the bot keeps their bot recency and activity."""
    append_events(engine, _messages(1, "pricing", 2, days_ago=20) + _messages(2, "pricing", 2, days_ago=20))
    append_events(engine, [_product(1, "api_call")])  # 3 hours before as_of
    f = compute_features(engine, as_of=AS_OF).frame
    assert f.loc[1, "recency_days"] == pytest.approx(f.loc[2, "recency_days"])
    assert f.loc[1, "events"] == f.loc[2, "events"] == 2
    only_product = 3
    append_events(engine, [_product(only_product, "api_call")])
    assert only_product not in compute_features(engine, as_of=AS_OF).frame.index  # never used the bot


def test_a_number_far_from_the_population_names_the_segment() -> None:
    frame = pd.DataFrame(
        {
            "recency_days": [1.0] * 6,
            "active_days": [5.0] * 6,
            "tenure_days": [90.0] * 6,
            "num:spend": [1000.0, 1000.0, 1000.0, 10.0, 10.0, 10.0],
            "age:signup": [50.0] * 6,
        }
    )
    profiles = {p.label: p for p in describe_segments(frame, np.array([0, 0, 0, 1, 1, 1]))}
    # population median 505: 1000 is 1.98× (not apart), 10 is 0.02× (apart)
    assert "spend" not in profiles[0].name
    assert profiles[1].name.endswith(", low spend") and "spend 0.0× the median" in profiles[1].description
    assert "signup" not in profiles[0].description  # the same age everywhere sets nobody apart


def test_a_categorical_trait_weighs_as_one_feature() -> None:
    """Its one-hot columns share one scale, so a rare category is not 3.6 units from the mean."""
    rng = np.random.default_rng(1)
    n = 200
    plans = rng.choice(["free", "pro", "team"], size=n, p=[0.6, 0.33, 0.07])
    frame = pd.DataFrame(
        {f"cat:plan={p}": (plans == p).astype(float) for p in ("free", "pro", "team")}
        | {"active_days": rng.normal(5, 1, n)}
    )
    columns = tuple(frame.columns)
    groups = category_groups(columns)
    assert groups == ((0, 1, 2),)
    segmenter = UserSegmenter(k_min=2, k_max=2, column_groups=groups).fit(frame.to_numpy())
    scale = segmenter.scaler_.scale_
    assert scale[0] == scale[1] == scale[2] == pytest.approx(np.sqrt(frame.iloc[:, :3].var(ddof=0).sum()))
    team = segmenter.scaler_.transform(frame.to_numpy())[plans == "team", 2]
    assert team.max() < 1.5  # standardised alone it would be about 3.6
