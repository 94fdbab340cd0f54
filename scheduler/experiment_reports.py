"""What an experiment shows: per arm sends, conversions, rate with a Wilson interval, lift vs control.

Broadcast experiments read their campaign's rows; the re-engagement job's follow-up choice (a
bandit: the model's pick plus Thompson exploration) is reported the same way, with the follow-up
messages as arms and the global holdout as control. The figures come from
`analytics.experiments.evaluate_experiment`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine

from analytics.experiments import ArmResult, evaluate_experiment
from scheduler.errors import ExperimentNotFoundError
from store.experiments import (
    CONTROL,
    HOLDOUT,
    ArmCounts,
    ExperimentInfo,
    arm_counts,
    experiment_for_campaign,
    followup_counts,
    followup_experiment,
    get_experiment,
    list_experiments,
)
from store.vocabulary import ExperimentKind, ExperimentStatus

__all__ = [
    "FOLLOWUP_BANDIT",
    "ArmReport",
    "ExperimentReport",
    "campaign_experiment",
    "experiment_report",
    "followup_report",
    "followup_variant_report",
    "recent_experiment_reports",
]

FOLLOWUP_BANDIT = "followups"
"""The id `rapport experiments report` takes for the re-engagement job's bandit."""
FOLLOWUP_PREFIX = "followup:"
"""`rapport experiments report followup:<message id>`: the variants of one follow-up message."""


@dataclass(frozen=True)
class ArmReport:
    """One arm: what it sent, and how it converted (by the goal), returned and clicked."""

    arm: str
    label: str
    sends: int
    returned: int
    clicked: int
    result: ArmResult
    untrackable_buttons: tuple[str, ...] = ()

    def line(self, *, goal: str, winner: str | None) -> str:
        """`A “Try it” — 120 sent, 30 converted: 25.0% (95% CI 18.1–33.4%); lift +5.0 pp (…)`."""
        r = self.result
        head = f"{self.arm}{' (winner)' if self.arm == winner else ''} “{self.label}”"
        verb = "held back" if self.arm in (CONTROL, HOLDOUT) else "sent"
        if r.rate is None or r.interval is None:
            return f"{head}: {self.sends} {verb}, nothing measured yet"
        low, high = r.interval
        text = (
            f"{head}: {self.sends} {verb}, {r.conversions} converted ({goal}): {r.rate:.1%} "
            f"(95% CI {low:.1%}–{high:.1%})"
        )
        if r.lift is not None and r.lift_interval is not None:
            text += (
                f"; lift vs control {r.lift * 100:+.1f} pp "
                f"(95% CI {r.lift_interval[0] * 100:+.1f} to {r.lift_interval[1] * 100:+.1f})"
            )
        return text

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready figures."""
        r = self.result
        return {
            "arm": self.arm,
            "label": self.label,
            "sends": self.sends,
            "conversions": r.conversions,
            "rate": r.rate,
            "interval": list(r.interval) if r.interval is not None else None,
            "lift": r.lift,
            "lift_interval": list(r.lift_interval) if r.lift_interval is not None else None,
            "returned": self.returned,
            "clicked": self.clicked,
            "untrackable_buttons": list(self.untrackable_buttons),
        }


@dataclass(frozen=True)
class ExperimentReport:
    """An experiment's arms with their figures, the chi-squared test and the decision."""

    id: int | str
    kind: str
    name: str
    status: str
    goal: str
    window_hours: float
    arms: tuple[ArmReport, ...]
    chi_squared: tuple[float, float] | None
    winner: str | None = None
    decision: str | None = None
    campaign_id: int | None = None
    test_share: float | None = None
    decide_at: datetime | None = None

    def lines(self) -> list[str]:
        """Human-readable lines for the CLI and Telegram."""
        head = f"experiment #{self.id} ({self.kind}) “{self.name}”: {self.status}"
        if self.campaign_id is not None:
            head += f", campaign #{self.campaign_id}"
        lines = [head, f"goal: {self.goal} within {self.window_hours:g} h of the send"]
        if self.test_share is not None:
            when = f", winner picked at {self.decide_at:%Y-%m-%d %H:%M} UTC" if self.decide_at else ""
            lines.append(f"phased: {self.test_share:.0%} of the audience tested first{when}")
        lines.extend(arm.line(goal=self.goal, winner=self.winner) for arm in self.arms)
        if self.chi_squared is None:
            lines.append(
                "chi-squared across variants: not computable yet (needs two arms with sends and variation)"
            )
        else:
            statistic, p_value = self.chi_squared
            lines.append(f"chi-squared across variants: {statistic:.2f}, p = {p_value:.3g}")
        for arm in self.arms:
            if arm.untrackable_buttons:
                names = ", ".join(f"“{b}”" for b in arm.untrackable_buttons)
                lines.append(f"{arm.arm}: URL button(s) {names} are not trackable: presses are not counted")
        if self.decision:
            lines.append(f"decision: {self.decision}")
        return lines

    def as_dict(self) -> dict[str, Any]:
        """The report as JSON-ready data (`rapport experiments report ID --json`)."""
        return {
            "id": self.id,
            "kind": self.kind,
            "name": self.name,
            "status": self.status,
            "campaign_id": self.campaign_id,
            "goal": self.goal,
            "window_hours": self.window_hours,
            "test_share": self.test_share,
            "decide_at": self.decide_at.isoformat() if self.decide_at is not None else None,
            "arms": [arm.as_dict() for arm in self.arms],
            "chi_squared": None
            if self.chi_squared is None
            else {"statistic": self.chi_squared[0], "p_value": self.chi_squared[1]},
            "winner": self.winner,
            "decision": self.decision,
        }


def _arms(
    order: list[str],
    counts: dict[str, ArmCounts],
    labels: dict[str, str],
    *,
    control: str | None,
    untrackable: dict[str, tuple[str, ...]] | None = None,
) -> tuple[tuple[ArmReport, ...], tuple[float, float] | None]:
    sends = {arm: counts.get(arm, ArmCounts()).sends for arm in order}
    conversions = {arm: counts.get(arm, ArmCounts()).converted for arm in order}
    result = evaluate_experiment(conversions, sends, control=control if control in sends else None)
    by_arm = {r.arm: r for r in result.arms}
    arms = tuple(
        ArmReport(
            arm,
            labels.get(arm, arm),
            sends[arm],
            counts.get(arm, ArmCounts()).returned,
            counts.get(arm, ArmCounts()).clicked,
            by_arm[arm],
            (untrackable or {}).get(arm, ()),
        )
        for arm in order
    )
    return arms, result.chi_squared


def _short(text: str, limit: int = 40) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def report_of(engine: Engine, experiment: ExperimentInfo) -> ExperimentReport:
    """The report of a stored experiment (a broadcast's, or a follow-up message's variants)."""
    counts = arm_counts(engine, experiment)
    order = [v.key for v in experiment.variants]
    # A follow-up message's variants follow its catalogue: rows of a variant since removed still count.
    gone = sorted(arm for arm in counts if arm not in order and arm != CONTROL)
    order.extend(gone)
    if experiment.control_share > 0 or CONTROL in counts:
        order.append(CONTROL)
    labels = {v.key: _short(v.text) for v in experiment.variants} | {CONTROL: "no message"}
    labels |= {arm: "no longer in the catalogue" for arm in gone}
    untrackable = {v.key: tuple(b.text for b in v.buttons if not b.trackable) for v in experiment.variants}
    arms, chi = _arms(order, counts, labels, control=CONTROL, untrackable=untrackable)
    decision = experiment.decision
    if decision is None and experiment.status == ExperimentStatus.TESTING:
        decision = "test phase: the winner is not picked yet"
    return ExperimentReport(
        id=experiment.id,
        kind=experiment.kind,
        name=experiment.name,
        status=experiment.status,
        goal=experiment.goal,
        window_hours=experiment.window_hours,
        arms=arms,
        chi_squared=chi,
        winner=experiment.winner,
        decision=decision,
        campaign_id=experiment.campaign_id,
        test_share=experiment.test_share,
        decide_at=experiment.decide_at,
    )


def campaign_experiment(engine: Engine, campaign_id: int) -> ExperimentReport | None:
    """The report of the experiment a campaign carries, or None for a plain campaign."""
    experiment = experiment_for_campaign(engine, campaign_id)
    return None if experiment is None else report_of(engine, experiment)


def experiment_report(engine: Engine, experiment_id: int) -> ExperimentReport:
    """The report of one experiment.

    Raises:
        ExperimentNotFoundError: no experiment has this id.
    """
    experiment = get_experiment(engine, experiment_id)
    if experiment is None:
        raise ExperimentNotFoundError(f"no experiment #{experiment_id}")
    return report_of(engine, experiment)


def followup_variant_report(engine: Engine, message_id: str) -> ExperimentReport:
    """The report of a follow-up message's variants: every re-engagement run that chose it, together.

    Users are assigned by a stable hash of (message, user), so the arms are comparable although
    the chooser decides who gets the message at all; the control arm is the users it was chosen
    for who got nothing (the global holdout is never in it).

    Raises:
        ExperimentNotFoundError: the message never ran with variants.
    """
    experiment = followup_experiment(engine, message_id)
    if experiment is None:
        raise ExperimentNotFoundError(
            f"follow-up message {message_id!r} has no variant experiment (no re-engagement run planned "
            "it with variants yet)"
        )
    return report_of(engine, experiment)


def recent_experiment_reports(engine: Engine, *, limit: int = 10) -> list[ExperimentReport]:
    """Reports of the latest experiments, newest first."""
    return [report_of(engine, experiment) for experiment in list_experiments(engine, limit=limit)]


def followup_report(engine: Engine, *, now: datetime, days: int | None = None) -> ExperimentReport:
    """The re-engagement job's follow-up choice as a bandit experiment: one arm per follow-up message.

    Conversions are returns within 48 h of the push (any own event), as the job's uplift has them;
    the global holdout is the control. The chooser adapts as it learns, so later pushes lean to the
    better messages: the arms' rates compare fairly, their sends do not.
    """
    since = now - timedelta(days=days) if days is not None else None
    counts = followup_counts(engine, since=since)
    order = sorted(arm for arm in counts if arm != HOLDOUT)
    if HOLDOUT in counts:
        order.append(HOLDOUT)
    arms, chi = _arms(order, counts, {HOLDOUT: "global holdout"}, control=HOLDOUT)
    period = f"last {days} days" if days is not None else "all time"
    return ExperimentReport(
        id=FOLLOWUP_BANDIT,
        kind=ExperimentKind.FOLLOWUP,
        name=f"re-engagement follow-ups (bandit, Thompson exploration), {period}",
        status=ExperimentStatus.RUNNING,
        goal="return",
        window_hours=48.0,
        arms=arms,
        chi_squared=chi,
    )
