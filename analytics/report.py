"""The offline analytics report: one HTML file with embedded charts, plus JSON and CSV."""

from __future__ import annotations

import base64
import html
import io
import json
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
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
    retention_sizes,
    run_staff,
    segment_migration,
    top_intents_per_segment,
    top_rule_records,
    unanswered_questions,
)
from analytics.naming import PROFILE_COLUMNS
from analytics.report_figures import (
    SMALL_COHORT,
    clipped_scale,
    cohort_label,
    complete_buckets,
    conviction_text,
    glossary_sentence,
    integer_columns,
    membership_rules,
    small_cohorts,
    window_start,
)
from store.analytics_results import RunInfo, run_memberships

logger = logging.getLogger(__name__)

REPORT_DAYS = 90
PROJECTION_SAMPLE = 5000
RULES_FETCHED = 60
"""Rules read for the report; those restating segment membership are hidden from the page."""
RULES_SHOWN = 30


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
                bright = value > np.nanmin(values) + 0.6 * (np.nanmax(values) - np.nanmin(values))
                axis.text(
                    column,
                    row,
                    fmt.format(value),
                    ha="center",
                    va="center",
                    fontsize=6,
                    color="k" if bright else "w",
                )
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


def _projection(
    engine: Engine, run_id: int, as_of: datetime, seed: int, staff: tuple[int, ...] = ()
) -> tuple[str, str] | None:
    """Users in 2-D (PCA of the scaled features), coloured by segment, on a sample."""
    users, segment_ids = run_memberships(engine, run_id)
    if len(users) < 3:
        return None
    features = compute_features(engine, as_of=as_of, exclude_users=staff)
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
    axis.legend(markerscale=3, fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1))
    axis.set_title(f"Users in 2-D (PCA), sample of {len(frame)}")
    return ("2-D projection of users by segment", _png(figure))


def _table_html(frame: pd.DataFrame, title: str, *, empty: str = "Nothing to show.", note: str = "") -> str:
    """A titled table that fits the page (it scrolls inside its box), or what an empty one needs."""
    head = f"<h2>{html.escape(title)}</h2>" + (f"<p class='note'>{html.escape(note)}</p>" if note else "")
    if frame.empty:
        return f"{head}<p>{html.escape(empty)}</p>"
    table = str(frame.to_html(index=False, escape=True, float_format="{:.3f}".format, na_rep=""))
    return f"{head}<div class='table'>{table}</div>"


def _retention_chart(shares: pd.DataFrame, sizes: pd.Series) -> str:
    """Retention %, one row per weekly cohort with its size; tiny cohorts hatched and grey."""
    small = set(small_cohorts(sizes))
    values = shares.to_numpy(dtype=float) * 100
    rows = [str(label) for label in shares.index]
    masked = np.ma.masked_invalid(values.copy())
    for row, label in enumerate(rows):
        if label in small:
            masked[row, :] = np.ma.masked
    figure = Figure(figsize=(max(6, 0.5 * values.shape[1] + 3), max(2.5, 0.45 * values.shape[0] + 1.2)))
    axis = figure.subplots()
    cmap = matplotlib.colormaps["viridis"].copy()
    cmap.set_bad("white")
    image = axis.imshow(masked, aspect="auto", cmap=cmap, vmin=0, vmax=100)
    for row, label in enumerate(rows):
        if label in small:
            axis.add_patch(
                Rectangle(
                    (-0.5, row - 0.5), values.shape[1], 1, facecolor="#e6e6e6", hatch="//", edgecolor="#999"
                )
            )
    for (row, column), value in np.ndenumerate(values):
        if np.isfinite(value):
            grey = rows[row] in small
            axis.text(
                column,
                row,
                f"{value:.0f}",
                ha="center",
                va="center",
                fontsize=7,
                color="#555" if grey else ("k" if value > 60 else "w"),
            )
    axis.set_xticks(range(values.shape[1]), [str(c) for c in shares.columns], fontsize=7)
    axis.set_xlabel("weeks after the first week")
    labels = [cohort_label(label, int(sizes.get(label, 0))) for label in rows]
    axis.set_yticks(range(len(rows)), labels, fontsize=7)
    axis.set_ylabel("first week (users)")
    figure.colorbar(image, ax=axis, label="% of the cohort active")
    axis.set_title("Retention %: share of each week's new users still active N weeks later")
    return _png(figure)


def _activity_chart(grid: pd.DataFrame) -> tuple[str, str]:
    """Events by weekday × hour on a colour scale clipped at the 95th percentile, and its caption."""
    values = grid.to_numpy(dtype=float)
    scale = clipped_scale(values)
    figure = Figure(figsize=(11, 3.6))
    axis = figure.subplots()
    image = axis.imshow(values, aspect="auto", cmap="viridis", vmin=0, vmax=scale.vmax)
    for (row, column), value in np.ndenumerate(values):
        if value > scale.vmax:
            axis.text(column, row, f"{value:.0f}", ha="center", va="center", fontsize=6, color="k")
    axis.set_xticks(range(grid.shape[1]), [str(c) for c in grid.columns], fontsize=7)
    axis.set_xlabel("hour of day (UTC)")
    axis.set_yticks(range(grid.shape[0]), [str(i) for i in grid.index], fontsize=7)
    figure.colorbar(image, ax=axis, label="events", extend="max" if scale.clipped else "neither")
    axis.set_title("When users are active")
    return _png(figure), scale.caption()


def _active_users_chart(series: dict[str, pd.DataFrame], as_of: datetime) -> tuple[str, str] | None:
    """DAU/WAU/MAU without the partial first and last buckets, and a caption saying what went."""
    first = window_start(list(series["dau"]["start"]), as_of)
    figure = Figure(figsize=(9, 3))
    axis = figure.subplots()
    dropped: list[str] = []
    missing: list[str] = []
    for name, days in (("dau", 1), ("wau", 7), ("mau", 30)):
        kept, n = complete_buckets(series[name], period_days=days, first=first, until=as_of)
        if n:
            dropped.append(f"{n} {name.upper()}")
        if kept.empty:
            missing.append(name.upper())
            continue
        axis.plot(kept["start"], kept["users"], marker=".", label=f"{name.upper()} ({days} d)")
    if not axis.lines:
        return None
    axis.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=8)
    axis.set_ylabel("distinct users")
    axis.set_ylim(bottom=0)
    axis.set_title("Active users over time (complete periods only)")
    figure.autofmt_xdate()
    caption = (
        "Only complete periods are drawn: the first recorded day (logging began; everyone active "
        "around then shows up at once), a week or month that began before it, and a day that is "
        "not over yet count only part of the picture and would show a false spike, ramp-up or drop"
    )
    caption += (f" (left out: {', '.join(dropped)} point(s))" if dropped else "") + "."
    if missing:
        caption += f" {' and '.join(missing)}: no complete period in the data yet (see the figures above)."
    return _png(figure), caption


@dataclass(frozen=True)
class ReportContent:
    """Every number of the report (also what report.json holds) and its charts, as PNG data URIs."""

    run: RunInfo | None
    as_of: datetime
    stats: ActivityStats
    tables: dict[str, pd.DataFrame]
    charts: list[tuple[str, str]]
    captions: dict[str, str] = field(default_factory=dict)
    staff: tuple[int, ...] = ()
    hidden_rules: int = 0


def _rules_frame(engine: Engine) -> pd.DataFrame:
    """The top rules with a `restates_segment` flag (hidden in the page, kept in the CSV)."""
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
            for r in top_rule_records(engine, RULES_FETCHED)
        ]
    )
    if not rules.empty:
        rules["restates_segment"] = membership_rules(rules).to_numpy()
    return rules


def _rules_shown(rules: pd.DataFrame) -> pd.DataFrame:
    """What the page shows of the rules: the informative ones, in plain words, rounded."""
    if rules.empty:
        return rules
    kept = rules.loc[~rules["restates_segment"]].head(RULES_SHOWN)
    return pd.DataFrame(
        {
            "rule": kept["sentence"],
            "users (support)": kept["support"].map("{:.0%}".format),
            "confidence": kept["confidence"].map("{:.0%}".format),
            "lift": kept["lift"].map("×{:.1f}".format),
            "conviction": [
                conviction_text(None if pd.isna(c) else float(c), float(f))
                for c, f in zip(kept["conviction"], kept["confidence"], strict=True)
            ],
        }
    )


def build_report(engine: Engine, *, exclude_users: tuple[int, ...] | None = None) -> ReportContent:
    """Collect every number of the report and its charts.

    Staff accounts are left out of every number: by default those the current run left out
    (its `exclude_users`, the admin ids its caller passed), or `exclude_users` when given.
    """
    run = current_run(engine)
    staff = run_staff(run) if exclude_users is None else tuple(exclude_users)
    as_of = (
        datetime.fromisoformat(run.params["as_of"]) if run and "as_of" in run.params else datetime.now(UTC)
    )
    since = as_of - timedelta(days=REPORT_DAYS)
    stats = activity_stats(engine, since, as_of, exclude_users=staff)
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
    rules = _rules_frame(engine)
    series = active_users_series(engine, since, as_of, exclude_users=staff)
    sizes = retention_sizes(engine, as_of, exclude_users=staff)
    tables = {
        "segments": segments,
        "rules": rules,
        "retention": retention(engine, as_of, exclude_users=staff),
        "retention_sizes": sizes.rename("users").rename_axis("cohort").reset_index(),
        "activity": activity_by_hour(engine, since, as_of, exclude_users=staff),
        "dau": series["dau"],
        "wau": series["wau"],
        "mau": series["mau"],
        "unanswered": unanswered_questions(engine, since, as_of, exclude_users=staff),
        "intents_by_segment": top_intents_per_segment(engine),
        "migration": segment_migration(engine),
    }
    charts: list[tuple[str, str]] = []
    captions: dict[str, str] = {}
    if not segments.empty:
        charts.extend(_segment_charts(segments))
        captions["Segment profiles (scaled per feature, medians)"] = (
            "Each column compares the segments' typical user on one measure: 0 is the lowest "
            "segment, 1 the highest. A blank cell means no data (nobody in that segment rated the "
            "bot, for instance)."
        )
        seed = int(run.params.get("random_state", 0)) if run else 0
        projection = _projection(engine, run.id, as_of, seed, staff) if run else None
        if projection:
            charts.append(projection)
            captions[projection[0]] = glossary_sentence("PCA")
    if not series["dau"].empty:
        active = _active_users_chart(series, as_of)
        if active:
            charts.append(("DAU / WAU / MAU", active[0]))
            captions["DAU / WAU / MAU"] = active[1]
    if not tables["retention"].empty:
        title = "Weekly retention cohorts"
        charts.append((title, _retention_chart(tables["retention"], sizes)))
        few = small_cohorts(sizes)
        captions[title] = (
            "Each row is the users first seen in that week (n = how many); each column a later week. "
            + (
                f"{len(few)} cohort(s) with fewer than {SMALL_COHORT} users are hatched grey: "
                "their percentages swing with one or two users."
                if few
                else f"Every cohort has at least {SMALL_COHORT} users."
            )
        )
    if tables["activity"].to_numpy().sum() > 0:
        title = "Activity by weekday and hour (UTC)"
        uri, caption = _activity_chart(tables["activity"])
        charts.append((title, uri))
        captions[title] = caption
    hidden = int(rules["restates_segment"].sum()) if not rules.empty else 0
    return ReportContent(
        run=run,
        as_of=as_of,
        stats=stats,
        tables=tables,
        charts=charts,
        captions=captions,
        staff=staff,
        hidden_rules=hidden,
    )


def write_report(engine: Engine, out_dir: str | Path) -> Path:
    """Write report.html (charts embedded as data URIs), report.json and one CSV per table."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    content = build_report(engine)
    run, stats, tables = content.run, content.stats, content.tables
    for name, frame in tables.items():
        frame.to_csv(out / f"{name}.csv", index=name in ("retention", "activity"))
    summary: dict[str, Any] = {
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
    summary["staff_excluded"] = len(content.staff)
    summary["rules_hidden"] = content.hidden_rules
    (out / "report.json").write_text(json.dumps(summary, indent=2, default=str), encoding="utf-8")
    (out / "report.html").write_text(_html(summary, content), encoding="utf-8")
    logger.info("analytics report written to %s", out)
    return out


STYLE = (
    "body{font-family:sans-serif;max-width:1100px;margin:auto;padding:0 12px}"
    "table{border-collapse:collapse;font-size:12px}td,th{border:1px solid #ccc;padding:2px 6px;"
    "vertical-align:top;text-align:left}.table{max-width:100%;overflow-x:auto}.kpi{display:inline-block;"
    "margin:8px 16px;text-align:center}img{max-width:100%}.note{color:#444;font-size:13px;"
    "max-width:60em}dl.glossary dt{font-weight:bold;margin-top:4px}dl.glossary dd{margin-left:1em}"
)


def _scores_html(run: dict[str, Any]) -> str:
    """Cluster quality with what each score means, rounded for reading."""
    seg = run["metrics"].get("segmentation") or {}
    if not seg:
        return ""
    rows = [{"k": "chosen", **(seg.get("scores") or {})}] + [
        {"k": k, **v} for k, v in (seg.get("k_scores") or {}).items()
    ]
    note = " ".join(glossary_sentence(term) for term in ("silhouette", "Calinski–Harabasz", "Davies–Bouldin"))
    return _table_html(
        pd.DataFrame(rows),
        "Cluster quality (silhouette, Calinski–Harabasz, Davies–Bouldin)",
        note=f"k is the number of segments tried. {note}",
    )


def _segments_html(segments: pd.DataFrame) -> str:
    """Segments as a manager reads them: name, size and description (the profile is charted)."""
    shown = segments[[c for c in ("id", "name", "size", "description", "pinned") if c in segments.columns]]
    return _table_html(integer_columns(shown, ("id", "size")), "Segments", empty="No segments yet.")


def _html(summary: dict[str, Any], content: ReportContent) -> str:
    tables, charts, captions = content.tables, content.charts, content.captions
    run = summary["run"]
    activity = summary["activity"]
    head = (
        f"<p>Run {run['id']} ({html.escape(str(run['status']))}): {html.escape(str(run['message']))}</p>"
        if run
        else "<p>No analytics run yet: run <code>rapport analytics run</code>.</p>"
    )
    staff = len(content.staff)
    head += (
        f"<p class='note'>{staff} staff account(s) (RAPPORT_ADMIN_IDS) are left out of every number "
        "below: managers are not community users.</p>"
        if staff
        else "<p class='note'>No staff accounts are left out: set RAPPORT_ADMIN_IDS so managers "
        "are not counted as users.</p>"
    )
    scores = _scores_html(run) if run else ""
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
    kpis += (
        "<p class='note'>DAU, WAU, MAU: distinct users active on the last day, in the last 7 and "
        "the last 30 days before the run; unanswered: the share of messages the bot had no answer "
        "for.</p>"
    )
    figures = "".join(
        f"<h2>{html.escape(title)}</h2><img alt='{html.escape(title)}' src='{uri}'>"
        + (f"<p class='note'>{html.escape(captions[title])}</p>" if title in captions else "")
        for title, uri in charts
    )
    hidden = content.hidden_rules
    rules_note = (
        "Each rule reads 'users who did X also did Y'. "
        + " ".join(glossary_sentence(t) for t in ("support", "confidence", "lift", "conviction"))
        + (
            f" {hidden} rule(s) that only restate segment membership (segments are made from the "
            "same behaviour) are hidden; they are in rules.csv with restates_segment = true."
            if hidden
            else ""
        )
    )
    sections = "".join(
        (
            _segments_html(tables["segments"]),
            _table_html(
                _rules_shown(tables["rules"]),
                "Top rules",
                note=rules_note,
                empty="No rule is strong enough yet: rules appear once enough users share habits "
                "(see the run's message for the thresholds)."
                if not hidden
                else "Every rule found only restates segment membership; see rules.csv.",
            ),
            _table_html(
                integer_columns(tables["intents_by_segment"], ("messages",)),
                "Top intents per segment",
                empty="Appears after the first analytics run with segmented users who sent messages.",
            ),
            _table_html(
                integer_columns(tables["unanswered"], ("count", "users")),
                "Unanswered questions",
                empty="No unanswered question in the period, or message texts are not stored "
                "(RAPPORT_STORE_TEXT).",
            ),
            _table_html(
                integer_columns(tables["migration"], ("users",)),
                "Segment migration",
                note="How many users moved from each segment of the previous run to each of this one.",
                empty="Segment movement appears after the second analytics run.",
            ),
        )
    )
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>Rapport analytics</title>"
        f"<style>{STYLE}</style></head><body><h1>Rapport analytics</h1>"
        f"<p>As of {html.escape(summary['as_of'])}</p>{head}<div>{kpis}</div>{scores}{figures}{sections}"
        "</body></html>"
    )
