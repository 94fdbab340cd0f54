"""What campaigns did: progress with the expected end, outcomes, and the uplift against the holdout."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine

from analytics.experiments import newcombe_interval, wilson_interval
from analytics.report_figures import Uplift as ReturnUplift
from analytics.report_figures import uplift
from scheduler.best_time import SEND_AT_SPLIT
from scheduler.errors import CampaignNotFoundError
from scheduler.send_time_report import SendTimeComparison, send_time_comparison
from store.campaign_reports import CampaignCounts, campaign_counts, pushed_vs_holdout
from store.campaigns import CampaignInfo, get_campaign, list_campaigns
from store.conversions import DEFAULT_GOAL_WINDOW, GoalConversions, UnknownGoalError, goal_conversions
from store.db import read_snapshot
from store.experiments import ExperimentInfo, experiment_for_campaign
from store.vocabulary import CampaignKind, CampaignStatus, DeliveryStatus

logger = logging.getLogger(__name__)


class Uplift(ReturnUplift):
    """Return rate of pushed users minus that of the holdout, with its 95% Newcombe interval.

    The figures and the interval are the analytics report's (`analytics.report_figures.Uplift`);
    this adds the one-line form the CLI, `/campaigns` and the scheduler's logs print.
    """

    @property
    def interval(self) -> tuple[float, float] | None:
        """95% confidence interval of the difference (None until both groups have measurements)."""
        return (self.low, self.high) if self.low is not None and self.high is not None else None

    def summary(self) -> str:
        """One line: rates, uplift and interval (and whether it is significant), or what is missing."""
        if self.difference is None or self.interval is None:
            return f"uplift: not measurable yet ({self.pushed} pushed, {self.holdout} holdout measured)"
        low, high = self.interval
        verdict = "significant" if self.significant else "not significant"
        return (
            f"returned within 48 h: pushed {self.pushed_returned}/{self.pushed} ({self.pushed_rate:.1%}), "
            f"holdout {self.holdout_returned}/{self.holdout} ({self.holdout_rate:.1%}); "
            f"uplift {self.difference * 100:+.1f} pp "
            f"(95% CI {low * 100:+.1f} to {high * 100:+.1f}, {verdict})"
        )


def measure_uplift(pushed: int, pushed_returned: int, holdout: int, holdout_returned: int) -> Uplift:
    """The uplift of these counts, with the interval computed as the analytics report does."""
    figures = uplift(pushed_returned, pushed, holdout_returned, holdout)
    return Uplift(pushed, pushed_returned, holdout, holdout_returned, figures.low, figures.high)


@dataclass(frozen=True)
class GoalReport:
    """Conversions to a campaign's goal: the pushed rate with its 95% Wilson interval, and the holdout's.

    With a holdout (re-engagement), the difference has its Newcombe interval, as returns do.
    """

    counts: GoalConversions

    @property
    def rate(self) -> float | None:
        """Share of sent users who converted (None before any was sent)."""
        c = self.counts
        return c.sent_converted / c.sent if c.sent else None

    @property
    def interval(self) -> tuple[float, float] | None:
        """95% Wilson interval of the pushed rate."""
        c = self.counts
        return wilson_interval(c.sent_converted, c.sent) if c.sent else None

    @property
    def holdout_rate(self) -> float | None:
        """Share of holdout users who converted (None without a holdout)."""
        c = self.counts
        return c.holdout_converted / c.holdout if c.holdout else None

    @property
    def holdout_interval(self) -> tuple[float, float] | None:
        """95% Wilson interval of the holdout rate (None without a holdout)."""
        c = self.counts
        return wilson_interval(c.holdout_converted, c.holdout) if c.holdout else None

    @property
    def difference(self) -> float | None:
        """Pushed rate minus holdout rate (None without both groups)."""
        if self.rate is None or self.holdout_rate is None:
            return None
        return self.rate - self.holdout_rate

    @property
    def uplift_interval(self) -> tuple[float, float] | None:
        """95% Newcombe interval of pushed minus holdout rate (None without both groups)."""
        c = self.counts
        if not c.sent or not c.holdout:
            return None
        return newcombe_interval(c.sent_converted, c.sent, c.holdout_converted, c.holdout)

    def summary(self) -> str:
        """One line: the goal, conversions, rate and interval; then the holdout's, when there is one."""
        c = self.counts
        hours = c.window.total_seconds() / 3600.0
        head = f"goal {c.goal} within {hours:g} h"
        if self.rate is None or self.interval is None:
            return f"{head}: not measurable yet (nothing sent)"
        low, high = self.interval
        line = (
            f"{head}: {c.sent_converted}/{c.sent} sent converted ({self.rate:.1%}, "
            f"95% CI {low:.1%} to {high:.1%})"
        )
        difference = self.uplift_interval
        if self.holdout_rate is not None and difference is not None:
            verdict = "significant" if difference[0] > 0 or difference[1] < 0 else "not significant"
            line += (
                f"; holdout {c.holdout_converted}/{c.holdout} ({self.holdout_rate:.1%}); "
                f"uplift {(self.rate - self.holdout_rate) * 100:+.1f} pp "
                f"(95% CI {difference[0] * 100:+.1f} to {difference[1] * 100:+.1f}, {verdict})"
            )
        return line

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready figures."""
        c = self.counts
        return {
            "goal": c.goal,
            "window_hours": c.window.total_seconds() / 3600.0,
            "sent": c.sent,
            "converted": c.sent_converted,
            "rate": self.rate,
            "interval": list(self.interval) if self.interval else None,
            "holdout": c.holdout,
            "holdout_converted": c.holdout_converted,
            "holdout_rate": self.holdout_rate,
            "uplift_interval": list(self.uplift_interval) if self.uplift_interval else None,
        }


def campaign_goal(engine: Engine, campaign: CampaignInfo) -> GoalReport | None:
    """The goal report of a campaign whose attributes name a goal; None without one.

    A stored goal that no longer parses (written by hand) is reported as unmeasurable in the
    logs rather than failing the whole report.
    """
    goal = campaign.attributes.get("goal")
    if not isinstance(goal, str) or not goal:
        return None
    hours = campaign.attributes.get("goal_window_hours")
    window = (
        timedelta(hours=float(hours)) if isinstance(hours, int | float) and hours > 0 else DEFAULT_GOAL_WINDOW
    )
    try:
        with read_snapshot(engine) as session:
            return GoalReport(goal_conversions(session, campaign.id, goal, window))
    except UnknownGoalError:
        logger.warning("campaign %d: stored goal %r is not a goal; not measured", campaign.id, goal)
        return None


@dataclass(frozen=True)
class CampaignReport:
    """A campaign, its counts, and for a running one the observed rate and expected end."""

    campaign: CampaignInfo
    counts: CampaignCounts
    rate_per_s: float
    expected_end: datetime | None
    uplift: Uplift | None
    send_time: SendTimeComparison | None = None
    """Best-time against fixed-time sends, for a campaign planned as that comparison."""
    experiment: ExperimentInfo | None = None
    """The experiment the campaign carries (`rapport experiments report ID` has its figures)."""
    goal: GoalReport | None = None

    def lines(self) -> list[str]:
        """Human-readable lines for the CLI and `/campaigns`."""
        c, n = self.campaign, self.counts
        by = n.by_status
        lines = [
            f"#{c.id} {c.kind} “{c.name}” → {c.segment}: {c.status}",
            f"targeted {n.targeted}, sent {by.get(DeliveryStatus.SENT, 0)}, "
            f"failed {by.get(DeliveryStatus.FAILED, 0)}, blocked {by.get(DeliveryStatus.BLOCKED, 0)}, "
            f"skipped {by.get(DeliveryStatus.SKIPPED, 0)}, "
            f"pending {by.get(DeliveryStatus.PENDING, 0) + by.get(DeliveryStatus.SENDING, 0)}",
        ]
        if n.ambiguous:
            lines.append(
                f"ambiguous {n.ambiguous}: may have reached the user (the answer was lost); not resent"
            )
        if n.skipped_by_reason:
            lines.append("skipped: " + ", ".join(f"{k} {v}" for k, v in sorted(n.skipped_by_reason.items())))
        if n.failed_by_reason:
            lines.append("failed: " + ", ".join(f"{k} {v}" for k, v in sorted(n.failed_by_reason.items())))
        if by.get(DeliveryStatus.SENT):
            lines.append(f"returned within 48 h: {n.returned} of {by[DeliveryStatus.SENT]} sent")
        if n.remaining and self.expected_end is not None:
            done = n.done / n.targeted if n.targeted else 1.0
            lines.append(
                f"progress {done:.0%} at {self.rate_per_s:.1f} msg/s; "
                f"expected end {self.expected_end:%Y-%m-%d %H:%M:%S} UTC"
            )
        if self.uplift is not None:
            lines.append(self.uplift.summary())
        if self.send_time is not None:
            lines.extend(self.send_time.lines())
        if self.experiment is not None:
            x = self.experiment
            winner = f", winner {x.winner}" if x.winner else ""
            lines.append(
                f"experiment #{x.id}: {len(x.variants)} variants, {x.status}{winner} "
                f"(rapport experiments report {x.id})"
            )
        if self.goal is not None:
            lines.append(self.goal.summary())
        return lines

    def as_dict(self) -> dict[str, Any]:
        """The report as JSON-ready data (`rapport broadcast report --json`)."""
        c, n = self.campaign, self.counts
        statuses = {status.value: n.by_status.get(status, 0) for status in DeliveryStatus}
        return {
            "id": c.id,
            "kind": c.kind,
            "name": c.name,
            "segment": c.segment,
            "status": c.status,
            "targeted": n.targeted,
            "by_status": statuses,
            "ambiguous": n.ambiguous,
            "skipped_by_reason": dict(n.skipped_by_reason),
            "failed_by_reason": dict(n.failed_by_reason),
            "returned": n.returned,
            "rate_per_s": self.rate_per_s,
            "expected_end": self.expected_end.isoformat() if self.expected_end is not None else None,
            "experiment_id": self.experiment.id if self.experiment is not None else None,
            "uplift": None
            if self.uplift is None
            else {
                "pushed": self.uplift.pushed,
                "pushed_returned": self.uplift.pushed_returned,
                "holdout": self.uplift.holdout,
                "holdout_returned": self.uplift.holdout_returned,
                "difference": self.uplift.difference,
            },
            "send_time": None if self.send_time is None else self.send_time.as_dict(),
            "goal": None if self.goal is None else self.goal.as_dict(),
        }


def campaign_report(engine: Engine, campaign_id: int, *, now: datetime, rate_per_s: float) -> CampaignReport:
    """Counts, progress and (for re-engagement) the uplift of one campaign.

    The expected end uses the rate observed over the last minute when sending is under way,
    else the configured rate; a campaign scheduled for later starts then.

    Raises:
        CampaignNotFoundError: no campaign has this id.
    """
    campaign = get_campaign(engine, campaign_id)
    if campaign is None:
        raise CampaignNotFoundError(f"no campaign #{campaign_id}")
    counts = campaign_counts(engine, campaign_id, now=now)
    rate = counts.sent_last_minute / 60.0 if counts.sent_last_minute >= 30 else rate_per_s
    expected_end = None
    if (
        counts.remaining
        and campaign.status in (CampaignStatus.SCHEDULED, CampaignStatus.RUNNING)
        and rate > 0
    ):
        start = max(now, campaign.scheduled_at)
        expected_end = start + timedelta(seconds=counts.remaining / rate)
    report_uplift = None
    if campaign.kind == CampaignKind.REENGAGEMENT:
        report_uplift = measure_uplift(
            counts.by_status.get(DeliveryStatus.SENT, 0),
            counts.returned,
            counts.holdout,
            counts.holdout_returned,
        )
    comparison = None
    if campaign.attributes.get("send_at") == SEND_AT_SPLIT:
        comparison = send_time_comparison(engine, campaign_id, now=now)
    experiment = (
        experiment_for_campaign(engine, campaign_id) if campaign.kind == CampaignKind.BROADCAST else None
    )
    return CampaignReport(
        campaign,
        counts,
        rate,
        expected_end,
        report_uplift,
        goal=campaign_goal(engine, campaign),
        send_time=comparison,
        experiment=experiment,
    )


def recent_reports(
    engine: Engine, *, now: datetime, rate_per_s: float, limit: int = 5
) -> list[CampaignReport]:
    """Reports of the latest campaigns, newest first."""
    return [
        campaign_report(engine, c.id, now=now, rate_per_s=rate_per_s)
        for c in list_campaigns(engine, limit=limit)
    ]


def reengagement_uplift(engine: Engine, *, since: datetime | None = None) -> Uplift:
    """The uplift over every measured re-engagement push (and holdout row) since `since`."""
    (pushed, pushed_returned), (holdout, holdout_returned) = pushed_vs_holdout(
        engine, kind="reengagement", since=since
    )
    return measure_uplift(pushed, pushed_returned, holdout, holdout_returned)
