"""The offline analytics report: one HTML file with embedded charts, plus JSON and CSV."""

from __future__ import annotations

import base64
import html
import io
import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from sklearn.decomposition import PCA
from sqlalchemy import Engine

from analytics.features import cluster_matrix, compute_features
from analytics.insights import (
    ActivityStats,
    active_users_series,
    activity_by_hour,
    activity_stats,
    current_run,
    current_segments,
    retention,
    segment_migration,
    top_intents_per_segment,
    top_rule_records,
    unanswered_questions,
)
from analytics.naming import PROFILE_COLUMNS
from store.analytics_results import RunInfo, run_memberships

logger = logging.getLogger(__name__)

REPORT_DAYS = 90
PROJECTION_SAMPLE = 5000


def _png(figure: Any) -> str:
    """A figure as a base64 PNG data URI, so the HTML needs no other file."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _heatmap(frame: pd.DataFrame, title: str, *, fmt: str = "{:.0f}", annotate: bool = True) -> str:
    figure = Figure(figsize=(max(6, 0.45 * frame.shape[1] + 2), max(2.5, 0.4 * frame.shape[0] + 1)))
    axis = figure.subplots()
    values = frame.to_numpy(dtype=float)
    image = axis.imshow(values, aspect="auto", cmap="viridis")
    axis.set_xticks(
        range(frame.shape[1]), [str(c) for c in frame.columns], rotation=45, ha="right", fontsize=7
    )
    axis.set_yticks(range(frame.shape[0]), [str(i) for i in frame.index], fontsize=7)
    if annotate and values.size <= 400:
        for (row, column), value in np.ndenumerate(values):
            if np.isfinite(value):
                axis.text(column, row, fmt.format(value), ha="center", va="center", fontsize=6, color="w")
    figure.colorbar(image, ax=axis)
    axis.set_title(title)
    return _png(figure)


def _segment_charts(segments: pd.DataFrame) -> list[tuple[str, str]]:
    charts = []
    figure = Figure(figsize=(7, 3))
    axis = figure.subplots()
    axis.barh(segments["name"], segments["size"], color="tab:blue")
    axis.invert_yaxis()
    axis.set_title("Segment sizes")
    charts.append(("Segment sizes", _png(figure)))
    profile = segments.set_index("name")[[c for c in PROFILE_COLUMNS if c in segments.columns]].astype(float)
    spread = (profile - profile.min()) / (profile.max() - profile.min()).replace(0, 1)
    charts.append(
        ("Segment profiles (scaled per feature, medians)", _heatmap(spread, "Segment profiles", fmt="{:.2f}"))
    )
    return charts


def _projection(engine: Engine, run_id: int, as_of: datetime, seed: int) -> tuple[str, str] | None:
    """Users in 2-D (PCA of the scaled features), coloured by segment, on a sample."""
    users, segment_ids = run_memberships(engine, run_id)
    if len(users) < 3:
        return None
    features = compute_features(engine, as_of=as_of)
    labels = pd.Series(segment_ids, index=pd.Index(users, dtype="int64"))
    frame = features.frame.join(labels.rename("segment_id"), how="inner")
    if len(frame) > PROJECTION_SAMPLE:
        frame = frame.sample(PROJECTION_SAMPLE, random_state=seed)
    X = cluster_matrix(frame)
    X = (X - X.mean(axis=0)) / np.where(X.std(axis=0) > 0, X.std(axis=0), 1.0)
    points = PCA(n_components=2, random_state=seed).fit_transform(X)
    names = {s.id: s.name for s in current_segments(engine)}
    figure = Figure(figsize=(7, 5))
    axis = figure.subplots()
    for segment_id in sorted(frame["segment_id"].unique()):
        mask = (frame["segment_id"] == segment_id).to_numpy()
        axis.scatter(
            points[mask, 0], points[mask, 1], s=4, alpha=0.6, label=names.get(segment_id, segment_id)
        )
    axis.legend(markerscale=3, fontsize=7)
    axis.set_title(f"Users in 2-D (PCA), sample of {len(frame)}")
    return ("2-D projection of users by segment", _png(figure))


def _table_html(frame: pd.DataFrame, title: str) -> str:
    if frame.empty:
        return f"<h2>{html.escape(title)}</h2><p>Nothing to show.</p>"
    return f"<h2>{html.escape(title)}</h2>" + str(
        frame.to_html(index=False, escape=True, float_format="{:.3f}".format)
    )


@dataclass(frozen=True)
class ReportContent:
    """Every number of the report (also what report.json holds) and its charts, as PNG data URIs."""

    run: RunInfo | None
    as_of: datetime
    stats: ActivityStats
    tables: dict[str, pd.DataFrame]
    charts: list[tuple[str, str]]


def build_report(engine: Engine) -> ReportContent:
    """Collect every number of the report and its charts."""
    run = current_run(engine)
    as_of = (
        datetime.fromisoformat(run.params["as_of"]) if run and "as_of" in run.params else datetime.now(UTC)
    )
    since = as_of - timedelta(days=REPORT_DAYS)
    stats = activity_stats(engine, since, as_of)
    segments = pd.DataFrame(
        [
            {
                "id": s.id,
                "name": s.name,
                "size": s.size,
                "description": s.description,
                "pinned": s.pinned,
                **s.profile,
            }
            for s in current_segments(engine)
        ]
    )
    rules = pd.DataFrame(
        [
            {
                "antecedents": ", ".join(r.antecedents),
                "consequents": ", ".join(r.consequents),
                "support": r.support,
                "confidence": r.confidence,
                "lift": r.lift,
                "leverage": r.leverage,
                "conviction": r.conviction,
                "sentence": r.sentence,
            }
            for r in top_rule_records(engine, 30)
        ]
    )
    series = active_users_series(engine, since, as_of)
    tables = {
        "segments": segments,
        "rules": rules,
        "retention": retention(engine, as_of),
        "activity": activity_by_hour(engine, since, as_of),
        "dau": series["dau"],
        "wau": series["wau"],
        "mau": series["mau"],
        "unanswered": unanswered_questions(engine, since, as_of),
        "intents_by_segment": top_intents_per_segment(engine),
        "migration": segment_migration(engine),
    }
    charts: list[tuple[str, str]] = []
    if not segments.empty:
        charts.extend(_segment_charts(segments))
        seed = int(run.params.get("random_state", 0)) if run else 0
        projection = _projection(engine, run.id, as_of, seed) if run else None
        if projection:
            charts.append(projection)
    if not series["dau"].empty:
        figure = Figure(figsize=(8, 3))
        axis = figure.subplots()
        for name in ("dau", "wau", "mau"):
            axis.plot(series[name]["start"], series[name]["users"], marker=".", label=name.upper())
        axis.legend()
        axis.set_title("Active users over time")
        figure.autofmt_xdate()
        charts.append(("DAU / WAU / MAU", _png(figure)))
    if not tables["retention"].empty:
        charts.append(("Weekly retention cohorts", _heatmap(tables["retention"] * 100, "Retention %")))
    if tables["activity"].to_numpy().sum() > 0:
        charts.append(
            ("Activity by weekday and hour (UTC)", _heatmap(tables["activity"], "Events", annotate=False))
        )
    return ReportContent(run=run, as_of=as_of, stats=stats, tables=tables, charts=charts)


def write_report(engine: Engine, out_dir: str | Path) -> Path:
    """Write report.html (charts embedded as data URIs), report.json and one CSV per table."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    content = build_report(engine)
    run, stats, tables = content.run, content.stats, content.tables
    for name, frame in tables.items():
        frame.to_csv(out / f"{name}.csv", index=name in ("retention", "activity"))
    summary = {
        "generated_at": datetime.now(UTC).isoformat(),
        "as_of": content.as_of.isoformat(),
        "run": None
        if run is None
        else {
            "id": run.id,
            "status": run.status,
            "message": run.message,
            "n_users": run.n_users,
            "n_events": run.n_events,
            "metrics": run.metrics,
            "params": run.params,
        },
        "activity": {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in vars(stats).items()},
        "tables": {
            name: json.loads(frame.reset_index().to_json(orient="records", date_format="iso"))
            if name in ("retention", "activity")
            else json.loads(frame.to_json(orient="records", date_format="iso"))
            for name, frame in tables.items()
        },
    }
    (out / "report.json").write_text(json.dumps(summary, indent=2, default=str), encoding="utf-8")
    (out / "report.html").write_text(_html(summary, tables, content.charts), encoding="utf-8")
    logger.info("analytics report written to %s", out)
    return out


def _html(summary: dict[str, Any], tables: dict[str, pd.DataFrame], charts: list[tuple[str, str]]) -> str:
    run = summary["run"]
    activity = summary["activity"]
    head = (
        f"<p>Run {run['id']} ({html.escape(str(run['status']))}): {html.escape(str(run['message']))}</p>"
        if run
        else "<p>No analytics run yet: run <code>rapport analytics run</code>.</p>"
    )
    scores = ""
    if run and run["metrics"].get("segmentation"):
        seg = run["metrics"]["segmentation"]
        rows = [{"k": "chosen", **(seg.get("scores") or {})}] + [
            {"k": k, **v} for k, v in (seg.get("k_scores") or {}).items()
        ]
        scores = _table_html(
            pd.DataFrame(rows), "Cluster quality (silhouette, Calinski–Harabasz, Davies–Bouldin)"
        )
    kpis = "".join(
        f"<div class='kpi'><b>{html.escape(str(activity[k]))}</b><br>{label}</div>"
        for k, label in (
            ("dau", "DAU"),
            ("wau", "WAU"),
            ("mau", "MAU"),
            ("new_users", "new users"),
            ("messages", "messages"),
        )
    )
    kpis += f"<div class='kpi'><b>{activity['fallback_rate']:.1%}</b><br>unanswered</div>"
    figures = "".join(
        f"<h2>{html.escape(title)}</h2><img alt='{html.escape(title)}' src='{uri}'>" for title, uri in charts
    )
    sections = "".join(
        _table_html(tables[name], title)
        for name, title in (
            ("segments", "Segments"),
            ("rules", "Top rules"),
            ("intents_by_segment", "Top intents per segment"),
            ("unanswered", "Unanswered questions"),
            ("migration", "Segment migration"),
        )
    )
    style = (
        "body{font-family:sans-serif;max-width:1100px;margin:auto}table{border-collapse:collapse;"
        "font-size:12px}td,th{border:1px solid #ccc;padding:2px 6px}.kpi{display:inline-block;"
        "margin:8px 16px;text-align:center}img{max-width:100%}"
    )
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>Rapport analytics</title>"
        f"<style>{style}</style></head><body><h1>Rapport analytics</h1>"
        f"<p>As of {html.escape(summary['as_of'])}</p>{head}<div>{kpis}</div>{scores}{figures}{sections}"
        "</body></html>"
    )
