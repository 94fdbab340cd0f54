"""Tests of the pure follow-up chooser: eligibility, cooldown, defaults, scoring and exploration."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from numpy.typing import NDArray

from analytics import followup
from analytics.catalogue import FollowupMessage, load_catalogue
from analytics.followup import (
    ChooserConfig,
    FollowupChoice,
    ResponseStats,
    UnknownTargetLog,
    UserContext,
    choose_followup,
    choose_followups,
)
from analytics.sequence import MarkovModel

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def message(
    message_id: str,
    targets: tuple[str, ...],
    *,
    segments: tuple[str, ...] = (),
    cooldown_days: int = 7,
    default: bool = False,
) -> FollowupMessage:
    return FollowupMessage(
        message_id, f"{message_id} en", f"{message_id} zh", targets, segments, cooldown_days, default
    )


MESSAGES = [
    message("welcome", ("greet",), default=True),
    message("pricing_tips", ("pricing", "billing")),
    message("rate_limit_guide", ("rate_limits",)),
    message("fine_tuning_guide", ("fine_tuning",)),
    message("come_back", ("greet",), segments=("dormant",), default=True),
]


class FixedModel:
    """A stand-in next-event model with one fixed distribution, so scores can be computed by hand."""

    def __init__(self, distribution: dict[str, float]) -> None:
        self.classes_ = np.array(sorted(distribution), dtype=np.str_)
        self.row = np.array([distribution[token] for token in self.classes_.tolist()])
        self.calls = 0

    def predict_proba(self, prefixes: Sequence[Sequence[str]]) -> NDArray[np.float64]:
        self.calls += 1
        return np.tile(self.row, (len(prefixes), 1))

    def rank(self, prefixes: Sequence[Sequence[str]], k: int = 10) -> list[list[str]]:
        order = np.argsort(-self.row)[:k]
        return [self.classes_[order].tolist() for _ in prefixes]


MODEL = FixedModel({"pricing": 0.3, "billing": 0.12, "rate_limits": 0.5, "greet": 0.08})
HISTORY = ["greet", "pricing", "billing", "rate_limits"]


def choose(**overrides: object) -> FollowupChoice | None:
    arguments: dict[str, object] = {
        "segment": "active",
        "last_sent": {},
        "stats": {},
        "model": MODEL,
        "now": NOW,
        "rng": np.random.default_rng(0),
        "exploration": 0.0,
        "config": ChooserConfig(min_events=3, model_weight=0.5),
    }
    arguments.update(overrides)
    history = arguments.pop("history", HISTORY)
    return choose_followup(history, MESSAGES, **arguments)  # type: ignore[arg-type]


def test_model_score_blends_probability_mass_and_response_rate() -> None:
    stats = {"pricing_tips": ResponseStats(sent=230, responded=41), "rate_limit_guide": ResponseStats(100, 0)}
    choice = choose(stats=stats)
    # pricing: 0.5 * 0.42 + 0.5 * 42/232 = 0.3005; rate limits: 0.5 * 0.5 + 0.5 * 1/102 = 0.2549.
    assert choice is not None
    assert choice.message_id == "pricing_tips"
    assert choice.method == "model"
    assert choice.score == pytest.approx(0.5 * 0.42 + 0.5 * 42 / 232)
    assert choice.reason == (
        "model: 0.42 probability of pricing/billing next; response rate 18% over 230 sends; score 0.30"
    )
    # Without response data the rate-limit guide's larger mass wins.
    assert choose().message_id == "rate_limit_guide"  # type: ignore[union-attr]


def test_cooldown_and_segment_eligibility() -> None:
    recent = {"rate_limit_guide": NOW - timedelta(days=6), "pricing_tips": NOW - timedelta(days=7)}
    choice = choose(last_sent=recent)
    assert choice is not None
    assert choice.message_id == "pricing_tips"  # rate-limit guide cools down 7 days; pricing just finished
    dormant = choose(segment="dormant", history=["join"], model=None)
    assert dormant is not None
    assert (dormant.message_id, dormant.method) == ("come_back", "default")
    assert "segment 'dormant'" in dormant.reason


def test_defaults_for_short_history_and_no_model() -> None:
    short = choose(history=["greet"])
    assert short == FollowupChoice(
        "welcome", 1.0, "global default: only 1 of the 3 events the model needs", "default"
    )
    no_model = choose(model=None)
    assert no_model is not None
    assert (no_model.message_id, no_model.reason) == ("welcome", "global default: no model is loaded")
    MODEL.calls = 0
    choose(history=["greet"])
    assert MODEL.calls == 0  # short histories never reach the model
    # Default in cooldown: fall back to the best response rate, and say so.
    fallback = choose(
        model=None, last_sent={"welcome": NOW}, stats={"fine_tuning_guide": ResponseStats(10, 9)}
    )
    assert fallback is not None
    assert (fallback.message_id, fallback.method) == ("fine_tuning_guide", "response_rate")
    assert "no default message is available" in fallback.reason


def test_no_eligible_message_returns_none_and_logs(caplog: pytest.LogCaptureFixture) -> None:
    everything = {item.id: NOW for item in MESSAGES}
    with caplog.at_level(logging.INFO, logger="analytics.followup"):
        assert choose(last_sent=everything) is None
    assert "all in cooldown" in caplog.text


def test_unknown_targets_are_scored_by_response_rate_and_logged_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    model = FixedModel({"pricing": 0.1, "greet": 0.0})
    stats = {"fine_tuning_guide": ResponseStats(sent=10, responded=10)}
    log = UnknownTargetLog()  # the caller owns what was reported, for one model
    with caplog.at_level(logging.INFO, logger="analytics.followup"):
        first = choose(model=model, stats=stats, unknown_targets=log)
        choose(model=model, stats=stats, unknown_targets=log)
    assert first is not None
    # fine-tuning: response-rate term only, 0.5 * 11/12 = 0.458 beats pricing 0.5 * 0.1 + 0.5 * 0.5 = 0.3.
    assert first.message_id == "fine_tuning_guide"
    assert first.score == pytest.approx(0.5 * 11 / 12)
    assert first.reason.startswith(
        "targets unknown to the model, response rate only; response rate 92% over 10"
    )
    assert caplog.text.count("'fine_tuning_guide': targets ['fine_tuning'] are unknown") == 1
    assert log.reported == {"fine_tuning_guide", "rate_limit_guide"}


def test_unknown_target_notices_are_not_module_state(caplog: pytest.LogCaptureFixture) -> None:
    # Without a shared log each call reports for itself: nothing is remembered between calls
    # (a process-wide set keyed by id(model) silenced a new model that reused a freed one's id).
    model = FixedModel({"pricing": 0.1, "greet": 0.0})
    stats = {"fine_tuning_guide": ResponseStats(sent=10, responded=10)}
    with caplog.at_level(logging.INFO, logger="analytics.followup"):
        for _ in range(2):
            choose(model=model, stats=stats)
    assert caplog.text.count("'fine_tuning_guide': targets ['fine_tuning'] are unknown") == 2
    assert not [name for name in vars(followup) if name.isupper() and isinstance(vars(followup)[name], set)]
    # One batch call reports each message once, however many users it scores.
    caplog.clear()
    users = [UserContext(user_id, tuple(HISTORY), "active") for user_id in range(50)]
    with caplog.at_level(logging.INFO, logger="analytics.followup"):
        list(
            choose_followups(
                users,
                MESSAGES,
                stats=stats,
                model=model,
                now=NOW,
                rng=np.random.default_rng(0),
                exploration=0.0,
                config=ChooserConfig(min_events=3, model_weight=0.5),
            )
        )
    assert caplog.text.count("'fine_tuning_guide': targets ['fine_tuning'] are unknown") == 1


def test_exploration_uses_thompson_sampling_and_is_seeded() -> None:
    stats = {item.id: ResponseStats(sent=1000, responded=10) for item in MESSAGES}
    stats["fine_tuning_guide"] = ResponseStats(sent=1000, responded=900)
    choices = [choose(exploration=1.0, stats=stats, rng=np.random.default_rng(seed)) for seed in range(20)]
    assert all(choice is not None and choice.method == "exploration" for choice in choices)
    assert {choice.message_id for choice in choices if choice} == {"fine_tuning_guide"}
    assert choices[0] == choose(exploration=1.0, stats=stats, rng=np.random.default_rng(0))
    assert choices[0].reason.startswith("exploration: Thompson sample 0.9")  # type: ignore[union-attr]
    picked = [
        choose(exploration=0.3, rng=np.random.default_rng(seed)).method  # type: ignore[union-attr]
        for seed in range(200)
    ]
    assert 0.2 < picked.count("exploration") / 200 < 0.4


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="exploration"):
        choose(exploration=1.5)
    with pytest.raises(ValueError, match="model_weight"):
        ChooserConfig(model_weight=2.0)
    with pytest.raises(ValueError, match="responded"):
        ResponseStats(sent=1, responded=2)


def test_batch_choice_matches_single_choice_and_streams() -> None:
    sequences = [["greet", "pricing", "billing", "pricing"], ["rate_limits", "docs", "rate_limits"]] * 20
    markov = MarkovModel().fit(sequences)
    catalogue = load_catalogue()
    users = [
        UserContext(
            user_id=i, history=tuple(sequences[i % 2][: 1 + i % 4]), segment="dormant" if i % 5 == 0 else None
        )
        for i in range(30)
    ]
    batch = list(
        choose_followups(
            users,
            catalogue.messages,
            stats={},
            model=markov,
            now=NOW,
            rng=np.random.default_rng(1),
            exploration=0.0,
            batch_size=7,
        )
    )
    assert [user_id for user_id, _ in batch] == list(range(30))
    for user, (_, choice) in zip(users, batch, strict=True):
        single = choose_followup(
            user.history,
            catalogue.messages,
            segment=user.segment,
            last_sent={},
            stats={},
            model=markov,
            now=NOW,
            rng=np.random.default_rng(1),
            exploration=0.0,
        )
        assert choice == single
    assert batch[0][1].method == "default"  # type: ignore[union-attr]
    assert batch[3][1].method == "model"  # type: ignore[union-attr]
    with pytest.raises(ValueError, match="batch_size"):
        list(
            choose_followups(
                users,
                catalogue.messages,
                stats={},
                model=None,
                now=NOW,
                rng=np.random.default_rng(),
                batch_size=0,
            )
        )


def test_batch_choice_draws_like_sequential_single_choices() -> None:
    # The vectorised batch path must consume the RNG and honour cooldowns exactly as one call per user.
    sequences = [["greet", "pricing", "billing", "pricing"], ["rate_limits", "docs", "rate_limits"]] * 20
    markov = MarkovModel().fit(sequences)
    recent = {"pricing_tips": NOW - timedelta(days=3), "unknown_id": NOW}
    users = [
        UserContext(
            user_id=i,
            history=tuple(sequences[i % 2][: 1 + i % 4]),
            segment=("dormant", None, "active")[i % 3],
            last_sent=recent if i % 2 else {},
        )
        for i in range(40)
    ]
    stats = {"pricing_tips": ResponseStats(50, 10), "rate_limit_guide": ResponseStats(20, 1)}
    arguments: dict[str, object] = {"stats": stats, "model": markov, "now": NOW, "exploration": 0.5}
    batch = list(
        choose_followups(users, MESSAGES, rng=np.random.default_rng(2), batch_size=6, **arguments)  # type: ignore[arg-type]
    )
    rng = np.random.default_rng(2)
    singles = [
        choose_followup(
            user.history, MESSAGES, segment=user.segment, last_sent=user.last_sent, rng=rng, **arguments
        )  # type: ignore[arg-type]
        for user in users
    ]
    assert [choice for _, choice in batch] == singles
    assert {choice.method for choice in singles if choice} == {"default", "exploration", "model"}
    assert all(choice.message_id != "pricing_tips" for choice in singles[1::2] if choice)
