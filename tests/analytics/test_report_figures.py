"""The figures a report shows managers, on hand-made inputs."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest

from analytics.report_figures import (
    GLOSSARY,
    clipped_scale,
    cohort_label,
    complete_buckets,
    conviction_text,
    glossary_sentence,
    integer_columns,
    membership_rules,
    points,
    rate_error,
    small_cohorts,
    uplift,
)


def test_uplift_matches_newcombes_published_example() -> None:
    # Newcombe (1998), method 10: 56/70 vs 48/80 gives +0.0524 to +0.3339.
    measured = uplift(56, 70, 48, 80)
    assert measured.low == pytest.approx(0.0524, abs=5e-4)
    assert measured.high == pytest.approx(0.3339, abs=5e-4)
    assert measured.significant
    assert "Significant: pushed users returned more often" in measured.sentence()


def test_an_interval_across_zero_says_not_significant_with_rates_and_sizes() -> None:
    measured = uplift(4, 21, 0, 7)
    assert measured.low is not None and measured.high is not None
    assert measured.low < 0 < measured.high and not measured.significant
    text = measured.sentence()
    assert "pushed 19% (4 of 21)" in text and "holdout 0% (0 of 7)" in text
    assert f"95% interval {points(measured.low)} to {points(measured.high)} points" in text
    assert "Not significant" in text and "Significant:" not in text


def test_a_clear_drop_is_significant_the_other_way() -> None:
    measured = uplift(10, 200, 60, 200)
    assert measured.high is not None and measured.high < 0 and measured.significant
    assert "returned fewer often" in measured.sentence()


def test_uplift_with_an_empty_group_cannot_be_compared_and_bad_counts_raise() -> None:
    empty = uplift(0, 0, 3, 10)
    assert empty.low is None and empty.difference is None and not empty.significant
    assert "cannot be compared" in empty.sentence()
    with pytest.raises(ValueError, match="group size"):
        uplift(5, 4, 0, 10)
    with pytest.raises(ValueError, match="group size"):
        uplift(-1, 4, 0, 10)


def test_points_use_a_true_minus_and_no_sign_for_zero() -> None:
    assert (points(-0.0812), points(0.3149), points(0.0004), points(0.0)) == ("−8", "+31", "0", "0")


def test_points_under_one_keep_a_decimal_so_a_significant_interval_never_reads_zero() -> None:
    assert (points(0.003), points(-0.0094), points(0.0096)) == ("+0.3", "−0.9", "+1")
    measured = uplift(25, 64, 4, 24)  # the demo's pushed vs holdout: the interval just excludes zero
    assert measured.significant and measured.low is not None and 0 < measured.low < 0.0095
    assert "interval 0 to" not in measured.sentence()


def test_rate_error_brackets_the_rate_and_is_zero_for_an_empty_group() -> None:
    below, above = rate_error(0, 7)
    assert below == 0.0 and 0.3 < above < 0.4  # Wilson upper bound of 0/7 is 0.354
    assert rate_error(0, 0) == (0.0, 0.0)


def test_one_outlier_cell_does_not_set_the_colour_scale() -> None:
    grid = np.full((7, 24), 10.0)
    grid[3, 1] = 529.0
    scale = clipped_scale(grid)
    assert scale.vmax == pytest.approx(10.0) and scale.clipped == 1
    assert "95th percentile" in scale.caption() and "1 busier cell" in scale.caption()
    even = clipped_scale(np.arange(1.0, 11.0))
    assert even.vmax < 10.0 and even.clipped == 1
    flat = clipped_scale(np.full((2, 2), 4.0))
    assert flat.vmax == 4.0 and flat.clipped == 0 and "busiest cell" in flat.caption()
    assert clipped_scale(np.array([np.nan])).vmax == 1.0


def test_small_cohorts_are_named_and_labelled() -> None:
    sizes = pd.Series({"2026-11-05": 110, "2026-11-12": 4, "2026-11-19": 19, "2026-11-26": 20})
    assert small_cohorts(sizes) == ["2026-11-12", "2026-11-19"]
    assert cohort_label("2026-11-12", 4) == "2026-11-12 (n=4) too few"
    assert cohort_label("2026-11-05", 110) == "2026-11-05 (n=110)"


def test_partial_buckets_at_both_ends_are_dropped() -> None:
    days = pd.date_range("2026-11-01", "2026-11-20", freq="D")
    dau = pd.DataFrame({"start": days, "users": range(len(days))})
    first = datetime(2026, 11, 1, tzinfo=UTC)
    until = datetime(2026, 11, 20, 15, tzinfo=UTC)  # the 20th is not over
    kept, dropped = complete_buckets(dau, period_days=1, first=first, until=until)
    assert dropped == 2  # the first recorded day and today
    assert kept["start"].min() == pd.Timestamp("2026-11-02") and kept["start"].max() == pd.Timestamp(
        "2026-11-19"
    )
    weeks = pd.DataFrame({"start": pd.to_datetime(["2026-10-29", "2026-11-05", "2026-11-12", "2026-11-19"])})
    weeks["users"] = [5, 9, 9, 3]
    kept, dropped = complete_buckets(weeks, period_days=7, first=first, until=until)
    assert list(kept["users"]) == [9, 9] and dropped == 2
    empty = pd.DataFrame(columns=["start", "users"])
    assert complete_buckets(empty, period_days=30, first=first, until=until)[1] == 0


def test_rules_that_restate_segment_membership_are_flagged() -> None:
    rules = pd.DataFrame(
        {
            "antecedents": [
                "churned_30d, intent:pricing",
                "segment:Drifting away",
                "segment:Power users",
                "feedback:positive",
            ],
            "consequents": ["segment:Drifting away", "churned_30d", "feedback:positive", "intent:docs"],
            "confidence": [1.0, 1.0, 0.69, 0.8],
        }
    )
    assert membership_rules(rules).tolist() == [True, True, False, False]
    assert membership_rules(pd.DataFrame()).empty


def test_conviction_never_prints_nan() -> None:
    assert conviction_text(None, 1.0) == "∞"
    assert conviction_text(math.nan, 1.0) == "∞"
    assert conviction_text(math.inf, 0.9) == "∞"
    assert conviction_text(None, 0.5) == "–"
    assert conviction_text(2.345, 0.8) == "2.35"


def test_counts_print_as_integers_even_with_gaps() -> None:
    frame = pd.DataFrame({"users": [12.0, np.nan, 3.0], "share": [0.5, 0.25, 0.125]})
    html = integer_columns(frame, ("users", "missing")).to_html(index=False, na_rep="")
    assert "<td>12</td>" in html and "12.0" not in html
    assert integer_columns(frame, ()).equals(frame)


def test_every_term_the_reports_use_has_a_plain_sentence() -> None:
    for term in ("HR@10", "MRR", "NDCG", "silhouette", "PCA", "ARI", "lift", "confidence", "conviction"):
        sentence = glossary_sentence(term)
        assert sentence.startswith(f"{term}: ") and len(sentence) > len(term) + 20
    assert "∞" in GLOSSARY["conviction"]
    with pytest.raises(KeyError):
        glossary_sentence("F1")
