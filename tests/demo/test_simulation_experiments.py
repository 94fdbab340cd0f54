"""The simulator's hidden truth for experiments: variant multipliers and hour-dependent responsiveness."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from demo.simulation import make_population
from demo.simulation.experiments import HOUR_FLOOR, conversion_probability, hour_factor, local_hour, zone_of


def test_zone_and_local_hour_follow_the_users_offset() -> None:
    persona = replace(make_population(5, seed=1).persona(0), utc_offset_h=8)
    assert zone_of(persona).key == "Etc/GMT-8"
    assert local_hour(persona, datetime(2026, 11, 2, 23, 30, tzinfo=UTC)) == 7
    west = replace(persona, utc_offset_h=-5)
    assert local_hour(west, datetime(2026, 11, 2, 3, 0, tzinfo=UTC)) == 22


def test_responsiveness_peaks_at_the_types_active_hours() -> None:
    profile = make_population(5, seed=1).persona(0).profile
    factors = [hour_factor(profile, hour) for hour in range(24)]
    assert min(factors) == pytest.approx(HOUR_FLOOR)
    assert max(factors) == pytest.approx(1.0)
    assert factors.index(max(factors)) in profile.peak_hours


def test_variant_effects_multiply_the_conversion_probability() -> None:
    persona = make_population(5, seed=1).persona(0)
    peak = persona.profile.peak_hours[0]
    when = datetime(2026, 11, 2, (peak - persona.utc_offset_h) % 24, 0, tzinfo=UTC)
    plain = conversion_probability(persona, (), when=when)
    boosted = conversion_probability(persona, (), when=when, variant="b", effects={"b": 1.5})
    assert plain == pytest.approx(persona.profile.push_response)
    assert boosted == pytest.approx(1.5 * plain)
    assert conversion_probability(persona, (), when=when, variant="x", effects={"b": 1.5}) == pytest.approx(
        plain
    )
