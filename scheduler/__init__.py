"""When to send and to whom: re-engagement, broadcasts, the delivery engine and its jobs."""

from __future__ import annotations

from scheduler.clock import Clock, ManualClock, SystemClock
from scheduler.control import cancel_campaign, pause_campaign, resume_campaign
from scheduler.engine import DeliveryEngine, EngineConfig, EngineStats
from scheduler.errors import (
    BroadcastError,
    CampaignNotFoundError,
    CampaignStateError,
    ExperimentError,
    ExperimentNotFoundError,
    LeaseLostError,
    SchedulerError,
    UnknownJobError,
)
from scheduler.experiment_reports import (
    ExperimentReport,
    experiment_report,
    followup_report,
    recent_experiment_reports,
)
from scheduler.experiments import (
    ExperimentDraft,
    VariantDraft,
    create_experiment_broadcast,
    decide_due_experiments,
    decide_experiment,
)
from scheduler.jobs import JOBS, JobContext, JobSpec, get_job, run_job
from scheduler.planning import create_broadcast, segment_recipients
from scheduler.policy import InactivityRule, QuietHours, in_holdout
from scheduler.reengagement import ReengagementConfig, ReengagementPlan, plan_reengagement
from scheduler.reports import CampaignReport, Uplift, campaign_report, recent_reports, reengagement_uplift
from scheduler.retrain import RetrainResult, retrain_followup_model
from scheduler.sender import Button, OutgoingMessage, Sender, SendResult, SendStatus, UrlButton
from scheduler.service import LEASE_NAME, SchedulerService

__all__ = [
    "JOBS",
    "LEASE_NAME",
    "BroadcastError",
    "Button",
    "CampaignNotFoundError",
    "CampaignReport",
    "CampaignStateError",
    "Clock",
    "DeliveryEngine",
    "EngineConfig",
    "EngineStats",
    "ExperimentDraft",
    "ExperimentError",
    "ExperimentNotFoundError",
    "ExperimentReport",
    "InactivityRule",
    "JobContext",
    "JobSpec",
    "LeaseLostError",
    "ManualClock",
    "OutgoingMessage",
    "QuietHours",
    "ReengagementConfig",
    "ReengagementPlan",
    "RetrainResult",
    "SchedulerError",
    "SchedulerService",
    "SendResult",
    "SendStatus",
    "Sender",
    "SystemClock",
    "UnknownJobError",
    "Uplift",
    "UrlButton",
    "VariantDraft",
    "campaign_report",
    "cancel_campaign",
    "create_broadcast",
    "create_experiment_broadcast",
    "decide_due_experiments",
    "decide_experiment",
    "experiment_report",
    "followup_report",
    "get_job",
    "in_holdout",
    "pause_campaign",
    "plan_reengagement",
    "recent_experiment_reports",
    "recent_reports",
    "reengagement_uplift",
    "resume_campaign",
    "retrain_followup_model",
    "run_job",
    "segment_recipients",
]
