"""Interaction analytics: features, segments, rules, insights and the follow-up model."""

from __future__ import annotations

# --- Features, segmentation, rules, insights and report ---
from analytics.errors import (
    AnalyticsError,
    BasketFileError,
    RuleMiningError,
    UnknownSegmentError,
)
from analytics.features import CLUSTER_COLUMNS, UserFeatures, cluster_matrix, compute_features, rfm_scores
from analytics.insights import (
    ActivityStats,
    active_users_series,
    activity_by_hour,
    activity_stats,
    current_run,
    current_segments,
    find_segment,
    pin_segment,
    retention,
    segment_members,
    segment_migration,
    top_intents_per_segment,
    top_rule_records,
    top_rules,
    unanswered_questions,
    user_segment,
)
from analytics.naming import SegmentProfile, describe_segments
from analytics.pipeline import AnalyticsConfig, RunSummary, run_analytics, user_baskets
from analytics.report import build_report, write_report
from analytics.rules import (
    OUTCOMES,
    AssociationRule,
    encode_baskets,
    mine_basket_file,
    mine_rules,
    read_baskets,
)
from analytics.segmentation import UserSegmenter, cluster_scores
from store.analytics_results import RuleInfo, RunInfo, SegmentInfo

# --- Follow-up model, metrics and catalogue (sequence helper): add imports below ---

__all__ = [
    "CLUSTER_COLUMNS",
    "OUTCOMES",
    "ActivityStats",
    "AnalyticsConfig",
    "AnalyticsError",
    "AssociationRule",
    "BasketFileError",
    "RuleInfo",
    "RuleMiningError",
    "RunInfo",
    "RunSummary",
    "SegmentInfo",
    "SegmentProfile",
    "UnknownSegmentError",
    "UserFeatures",
    "UserSegmenter",
    "active_users_series",
    "activity_by_hour",
    "activity_stats",
    "build_report",
    "cluster_matrix",
    "cluster_scores",
    "compute_features",
    "current_run",
    "current_segments",
    "describe_segments",
    "encode_baskets",
    "find_segment",
    "mine_basket_file",
    "mine_rules",
    "pin_segment",
    "read_baskets",
    "retention",
    "rfm_scores",
    "run_analytics",
    "segment_members",
    "segment_migration",
    "top_intents_per_segment",
    "top_rule_records",
    "top_rules",
    "unanswered_questions",
    "user_baskets",
    "user_segment",
    "write_report",
    # --- sequence helper's exports go here ---
]
