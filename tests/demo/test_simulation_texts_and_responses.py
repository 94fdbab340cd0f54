"""User texts and push responses."""

from __future__ import annotations

import numpy as np
import pytest

from demo.simulation import (
    INTENT_ACTIONS,
    natural_return_probability,
    render,
    response_intent,
    response_probability,
    type_named,
)


@pytest.mark.parametrize("language", ["en", "zh"])
def test_every_intent_renders_in_both_languages_without_unfilled_slots(language: str) -> None:
    rng = np.random.default_rng(0)
    for intent in (*INTENT_ACTIONS, "chatter"):
        for _ in range(20):
            text = render(intent, language, rng)
            assert text.strip()
            assert "{" not in text


def test_render_is_deterministic_and_varied() -> None:
    first = [render("pricing", "en", np.random.default_rng(3)) for _ in range(2)]
    assert first[0] == first[1]
    rng = np.random.default_rng(4)
    assert len({render("pricing", "en", rng) for _ in range(50)}) > 10


def test_chinese_texts_are_chinese() -> None:
    text = render("billing", "zh-hans", np.random.default_rng(1))
    assert any("\u4e00" <= ch <= "\u9fff" for ch in text)


def test_unknown_intent_is_named() -> None:
    with pytest.raises(KeyError, match="weather"):
        render("weather", "en", np.random.default_rng(0))


def test_pushes_about_interests_land_better() -> None:
    power = type_named("power_user")
    assert response_probability(power, ["rate_limits"]) == pytest.approx(
        power.push_response * power.push_match_boost
    )
    assert response_probability(power, ["community_events"]) == pytest.approx(power.push_response)
    assert response_intent(power, ["rate_limits", "join"], np.random.default_rng(0)) == "rate_limits"
    assert response_intent(power, ["join"], np.random.default_rng(0)) in power.interests()


def test_natural_return_grows_with_time() -> None:
    casual = type_named("casual_asker")
    assert natural_return_probability(casual, 0) == 0.0
    assert natural_return_probability(casual, 1) == pytest.approx(casual.natural_return)
    assert natural_return_probability(casual, 7) > natural_return_probability(casual, 2)
