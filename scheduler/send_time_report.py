"""Best-time against fixed-time sends of one campaign: per-arm rates and the difference, with intervals.

A campaign planned with `send_at: best_time_vs_fixed` has each sent row's arm in
`deliveries.variant`. A row converts when the user does anything of their own within the
window after the send. Only rows whose window has closed are measured (the best-time arm sends
later, so counting open windows would favour the fixed arm early on); the rest are reported as
still open.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine

from analytics.experiments import newcombe_interval, wilson_interval
from scheduler.best_time import BEST_TIME, FIXED
from store.campaign_reports import RESPONSE_WINDOW
from store.db import read_snapshot
from store.send_times import VariantOutcome, variant_outcomes

__all__ = ["SendTimeArm", "SendTimeComparison", "compare_send_times", "send_time_comparison"]


@dataclass(frozen=True)
class SendTimeArm:
    """One arm: measured sends, conversions, the rate with its 95% Wilson interval, sends still open."""

    arm: str
    sends: int
    conversions: int
    open: int = 0

    @property
    def rate(self) -> float | None:
        """Conversions per measured send (None before any is measured)."""
        return self.conversions / self.sends if self.sends else None

    @property
    def interval(self) -> tuple[float, float] | None:
        """95% Wilson interval of the rate."""
        return wilson_interval(self.conversions, self.sends) if self.sends else None

    def line(self) -> str:
        """`best time 120/1000 (12.0%, 95% CI 10.1-14.2%)`."""
        name = self.arm.replace("_", " ")
        if self.rate is None or self.interval is None:
            return f"{name}: nothing measured yet ({self.open} in their window)"
        low, high = self.interval
        text = f"{name} {self.conversions}/{self.sends} ({self.rate:.1%}, 95% CI {low:.1%}-{high:.1%})"
        return text + (f", {self.open} still in their window" if self.open else "")


@dataclass(frozen=True)
class SendTimeComparison:
    """Both arms and the difference best − fixed with its 95% Newcombe interval."""

    best: SendTimeArm
    fixed: SendTimeArm
    window: timedelta = RESPONSE_WINDOW

    @property
    def difference(self) -> float | None:
        """Best-time rate minus fixed-time rate (None until both are measured)."""
        if self.best.rate is None or self.fixed.rate is None:
            return None
        return self.best.rate - self.fixed.rate

    @property
    def interval(self) -> tuple[float, float] | None:
        """95% Newcombe interval of the difference."""
        if self.best.sends == 0 or self.fixed.sends == 0:
            return None
        return newcombe_interval(
            self.best.conversions, self.best.sends, self.fixed.conversions, self.fixed.sends
        )

    @property
    def verdict(self) -> str:
        """Which arm is better, when the interval excludes zero."""
        if self.interval is None:
            return "not measurable yet"
        low, high = self.interval
        if low > 0:
            return "best time converts better"
        if high < 0:
            return "fixed time converts better"
        return "no significant difference"

    def lines(self) -> list[str]:
        """Lines for the CLI and `/campaigns`: both arms side by side, then the difference."""
        hours = self.window.total_seconds() / 3600
        lines = [f"send time (converted within {hours:g} h): {self.best.line()}; {self.fixed.line()}"]
        if self.difference is not None and self.interval is not None:
            low, high = self.interval
            lines.append(
                f"best − fixed {self.difference * 100:+.1f} pp "
                f"(95% CI {low * 100:+.1f} to {high * 100:+.1f}): {self.verdict}"
            )
        return lines

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready figures."""

        def arm(a: SendTimeArm) -> dict[str, Any]:
            return {
                "sends": a.sends,
                "conversions": a.conversions,
                "rate": a.rate,
                "interval": list(a.interval) if a.interval else None,
                "open": a.open,
            }

        return {
            "window_hours": self.window.total_seconds() / 3600,
            BEST_TIME: arm(self.best),
            FIXED: arm(self.fixed),
            "difference": self.difference,
            "difference_interval": list(self.interval) if self.interval else None,
            "verdict": self.verdict,
        }


def compare_send_times(
    outcomes: dict[str, VariantOutcome], *, window: timedelta = RESPONSE_WINDOW
) -> SendTimeComparison:
    """The comparison of measured per-arm outcomes (arms missing from `outcomes` count as empty)."""

    def arm(name: str) -> SendTimeArm:
        found = outcomes.get(name)
        return (
            SendTimeArm(name, 0, 0)
            if found is None
            else SendTimeArm(name, found.sends, found.conversions, found.open)
        )

    return SendTimeComparison(arm(BEST_TIME), arm(FIXED), window)


def send_time_comparison(
    engine: Engine, campaign_id: int, *, now: datetime, window: timedelta = RESPONSE_WINDOW
) -> SendTimeComparison:
    """Best-time against fixed-time sends of a campaign, measured from its deliveries and the event log."""
    with read_snapshot(engine) as session:
        outcomes = variant_outcomes(session, campaign_id, now=now, window=window)
    return compare_send_times(outcomes, window=window)
