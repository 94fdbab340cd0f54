"""What campaigns did: progress with the expected end, outcomes, and the uplift against the holdout."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine

from analytics.report_figures import Uplift as ReturnUplift
from analytics.report_figures import uplift
from scheduler.best_time import SEND_AT_SPLIT
from scheduler.errors import CampaignNotFoundError
from scheduler.send_time_report import SendTimeComparison, send_time_comparison
from store.campaign_reports import CampaignCounts, campaign_counts, pushed_vs_holdout
from store.campaigns import CampaignInfo, get_campaign, list_campaigns
from store.experiments import ExperimentInfo, experiment_for_campaign
from store.vocabulary import CampaignKind, CampaignStatus, DeliveryStatus


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
        campaign, counts, rate, expected_end, report_uplift, send_time=comparison, experiment=experiment
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
