"""The demo's outputs: `report.html` with charts, `summary.json`, and the short text summary."""

from __future__ import annotations

import base64
import html
import io
import json
import logging
from dataclasses import asdict
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

from analytics.report_figures import Uplift, glossary_sentence, rate_error, uplift
from demo.run import DemoSummary

__all__ = ["summary_lines", "write_outputs"]

logger = logging.getLogger(__name__)


def _png(figure: Figure) -> str:
    buffer = io.BytesIO()
    figure.tight_layout()
    figure.savefig(buffer, format="png", dpi=90)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _segments_chart(summary: DemoSummary) -> str | None:
    if not summary.segments:
        return None
    types = list(summary.hidden_types)
    figure = Figure(figsize=(8, 3.5))
    axis = figure.subplots()
    names = [s["name"] for s in summary.segments]
    bottom = [0] * len(names)
    for hidden in types:
        values = [s["hidden_types"].get(hidden, 0) for s in summary.segments]
        axis.bar(names, values, bottom=bottom, label=hidden)
        bottom = [b + v for b, v in zip(bottom, values, strict=True)]
    axis.set_title(f"Segments found vs hidden types (ARI {summary.adjusted_rand_index:.2f})")
    axis.set_ylabel("users")
    axis.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1), title="hidden type")
    axis.tick_params(axis="x", labelrotation=20, labelsize=7)
    return _png(figure)


def _models_chart(summary: DemoSummary) -> str | None:
    if not summary.models:
        return None
    metrics = ("hr@1", "hr@5", "hr@10", "mrr")
    figure = Figure(figsize=(8, 3))
    axis = figure.subplots()
    width = 0.8 / len(summary.models)
    for i, (name, values) in enumerate(summary.models.items()):
        axis.bar(
            [m + i * width for m in range(len(metrics))], [values[k] for k in metrics], width, label=name
        )
    axis.set_xticks([m + 0.4 - width / 2 for m in range(len(metrics))], [k.upper() for k in metrics])
    axis.set_ylim(0, 1)
    axis.set_title("Next event on held-out days (higher is better)")
    axis.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=8)
    return _png(figure)


def push_uplift(summary: DemoSummary) -> Uplift | None:
    """Pushed vs holdout returns of the re-engagement round, with the interval of the difference."""
    returns = summary.pushes.get("returns")
    if not returns:
        return None
    return uplift(
        int(returns["pushed_returned"]),
        int(returns["pushed"]),
        int(returns["holdout_returned"]),
        int(returns["holdout"]),
    )


def _pushes_chart(summary: DemoSummary) -> str | None:
    campaigns = summary.pushes.get("campaigns", {})
    returns = summary.pushes.get("returns")
    if not campaigns and not returns:
        return None
    figure = Figure(figsize=(10, 3.4))
    left, right = figure.subplots(1, 2)
    # `skipped:<reason>` keys break `skipped` down; charting both would count those rows twice.
    statuses = sorted({s for c in campaigns.values() for s in c if ":" not in s})
    for i, (name, counts) in enumerate(campaigns.items()):
        left.bar(
            [x + i * 0.4 for x in range(len(statuses))], [counts.get(s, 0) for s in statuses], 0.4, label=name
        )
    left.set_xticks([x + 0.2 for x in range(len(statuses))], statuses, fontsize=8)
    left.set_title("Deliveries by status")
    if campaigns:
        left.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.12))
    if returns:
        measured = push_uplift(summary)
        groups = (
            ("pushed", int(returns["pushed_returned"]), int(returns["pushed"])),
            ("holdout", int(returns["holdout_returned"]), int(returns["holdout"])),
        )
        rates = [r / n if n else 0.0 for _g, r, n in groups]  # an empty group draws no bar height
        errors = [rate_error(r, n) for _g, r, n in groups]
        right.bar(
            [f"{g}\n{r} of {n}" for g, r, n in groups],
            rates,
            color=["C2", "C7"],
            yerr=[[e[0] for e in errors], [e[1] for e in errors]],
            capsize=6,
        )
        right.set_ylim(0, 1)
        right.set_ylabel("returned (95% range)")
        verdict = ""
        if measured is not None and measured.low is not None:
            verdict = "\nsignificant" if measured.significant else "\nnot significant (interval includes 0)"
        right.set_title(f"Return within {returns['horizon_days']:g} days{verdict}", fontsize=10)
    return _png(figure)


def _kinds_chart(summary: DemoSummary) -> str | None:
    if not summary.events_by_kind:
        return None
    figure = Figure(figsize=(8, 2.8))
    axis = figure.subplots()
    kinds = sorted(summary.events_by_kind, key=lambda k: -summary.events_by_kind[k])
    axis.bar(kinds, [summary.events_by_kind[k] for k in kinds])
    axis.set_yscale("log")
    axis.set_title("Events in the log by kind")
    axis.tick_params(axis="x", labelrotation=20, labelsize=8)
    return _png(figure)


def _rate(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1%}"


def _describe_counts(counts: dict[str, int]) -> str:
    """`sent 65, blocked 5, skipped 24 (holdout 24)`: statuses, with skip reasons in brackets."""
    reasons = {k.removeprefix("skipped:"): v for k, v in counts.items() if k.startswith("skipped:")}
    order = {"sent": 0, "failed": 1, "blocked": 2, "skipped": 3}
    parts = []
    for status in sorted((k for k in counts if ":" not in k), key=lambda k: (order.get(k, 9), k)):
        part = f"{status} {counts[status]}"
        if status == "skipped" and reasons:
            part += " (" + ", ".join(f"{reason} {n}" for reason, n in sorted(reasons.items())) + ")"
        parts.append(part)
    return ", ".join(parts)


def _product_lines(product: dict[str, Any]) -> list[str]:
    """Linked accounts, plans, the rules on product data and the upgrade goal's conversions."""
    if not product:
        return []
    plans = ", ".join(f"{name} {n}" for name, n in product.get("plans", {}).items())
    lines = [f"product: {product.get('linked', 0)} of {product.get('users', 0)} users linked ({plans})"]
    rules = product.get("rules") or []
    lines.append("rules on product data:" if rules else "rules on product data: none found")
    lines += [f"  - {rule}" for rule in rules[:3]]
    goal = product.get("upgrade_goal")
    if goal:
        lines.append(
            f"upgraded within {goal['window_days']:g} days of re-engagement: pushed "
            f"{_rate(goal['pushed_rate'])} ({goal['pushed_converted']}/{goal['pushed']}) vs holdout "
            f"{_rate(goal['holdout_rate'])} ({goal['holdout_converted']}/{goal['holdout']})"
        )
    return lines


def summary_lines(summary: DemoSummary) -> list[str]:
    """The short summary printed at the end of `rapport demo`."""
    lines = [
        f"users {summary.users} over {summary.days} days (seed {summary.seed}); "
        f"events {summary.events_total} ({summary.events_history} bulk history, "
        f"{summary.events_live} live through the bot)",
        f"segments {len(summary.segments)}, adjusted Rand index vs hidden types "
        f"{summary.adjusted_rand_index:.3f}",
    ]
    for segment in summary.segments:
        lines.append(
            f"  - {segment['name']}: {segment['size']} users, mostly {segment['dominant_type']}"
            f" ({segment['purity']:.0%})"
        )
    lines.append("top rules:" if summary.rules else "top rules: none found")
    lines += [f"  - {rule}" for rule in summary.rules[:3]]
    for name, values in summary.models.items():
        lines.append(
            f"{name:>10}: HR@1 {values['hr@1']:.3f}  HR@5 {values['hr@5']:.3f}  "
            f"HR@10 {values['hr@10']:.3f}  MRR {values['mrr']:.3f}  (n={int(values['n'])})"
        )
    for name, counts in summary.pushes.get("campaigns", {}).items():
        lines.append(f"{name}: {_describe_counts(counts)}")
    returns = summary.pushes.get("returns")
    if returns:
        lines.append(
            f"return within {returns['horizon_days']:g} days: pushed "
            f"{_rate(returns['pushed_rate'])} ({returns['pushed_returned']}/{returns['pushed']}) vs holdout "
            f"{_rate(returns['holdout_rate'])} ({returns['holdout_returned']}/{returns['holdout']})"
        )
        measured = push_uplift(summary)
        if measured is not None and measured.low is not None:
            lines.append("  " + measured.sentence())
    lines += experiment_lines(summary.experiment)
    lines += _product_lines(summary.product)
    lines += [f"skipped: {step}" for step in summary.skipped_steps]
    lines.append(f"wall time {summary.wall_s:.0f} s")
    return lines


def experiment_lines(experiment: dict[str, Any]) -> list[str]:
    """The message experiment: each arm's rate and interval beside its hidden truth, then the decision."""
    if not experiment:
        return []
    lines = [
        f"experiment ({experiment['users']} simulated users, converted within "
        f"{experiment['window_hours']:g} h):"
    ]
    for arm in experiment["arms"]:
        interval = arm["interval"]
        measured = (
            f"{arm['conversions']}/{arm['sends']} ({_rate(arm['rate'])}, 95% CI "
            f"{_rate(interval[0])}-{_rate(interval[1])})"
            if interval
            else "not sent"
        )
        lines.append(
            f"  - {arm['variant']}: {measured}; truth {_rate(arm['true_rate'])} (x{arm['true_multiplier']:g})"
        )
    verdict = "right" if experiment["picked_the_truly_best"] else "not the truly best"
    lines.append(
        f"  winner: {experiment['winner'] or 'no significant winner'} (sent {experiment['sent']}; "
        f"truly best {experiment['truly_best']}: {verdict})"
    )
    return lines


def _cell(value: Any) -> str:
    """A table cell: whole numbers as integers, other numbers to three decimals."""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float):
        return f"{value:.0f}" if value.is_integer() else f"{value:.3f}"
    return str(value)


def _table(rows: list[dict[str, Any]], *, empty: str = "None.") -> str:
    if not rows:
        return f"<p>{html.escape(empty)}</p>"
    head = "".join(f"<th>{html.escape(str(k))}</th>" for k in rows[0])
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(_cell(v))}</td>" for v in row.values()) + "</tr>" for row in rows
    )
    return f"<div class='table'><table><tr>{head}</tr>{body}</table></div>"


def _types(counts: dict[str, int]) -> str:
    """`casual 30, power_user 4`: a segment's hidden types, largest first."""
    return ", ".join(f"{k} {v}" for k, v in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def _pushes_html(summary: DemoSummary) -> str:
    """Pushed vs holdout in words, with what the demo's group sizes allow."""
    measured = push_uplift(summary)
    if measured is None:
        return "<p>No re-engagement round was measured.</p>"
    text = measured.sentence()
    extra = (
        " The demo keeps its groups small so it runs in minutes, and that is too small to measure "
        "the effect it simulates: even at its default 400 users the interval is about 40 points "
        "wide (around −8 to +31). A community of a few thousand users narrows it to a few points."
        if measured.low is not None and not measured.significant
        else ""
    )
    return f"<p>{html.escape(text + extra)}</p>"


def _experiment_html(experiment: dict[str, Any]) -> str:
    """The experiment's arms against the simulator's truth, and the decision in words."""
    if not experiment:
        return "<p>No experiment was run.</p>"
    rows = [
        {
            "variant": a["variant"],
            "message": a["text"],
            "sends": a["sends"],
            "conversions": a["conversions"],
            "rate": _rate(a["rate"]),
            "95% interval": f"{_rate(a['interval'][0])} – {_rate(a['interval'][1])}"
            if a["interval"]
            else "—",
            "true rate (hidden)": _rate(a["true_rate"]),
        }
        for a in experiment["arms"]
    ]
    decision = html.escape(experiment["decision"])
    return (
        f"<p>{html.escape(str(experiment['users']))} simulated users got one of three variants by a stable "
        "hash of their id; a conversion is anything they did within "
        f"{experiment['window_hours']:g} hours. Decision: {decision}.</p>" + _table(rows)
    )


GLOSSARY_TERMS = ("ARI", "HR@1", "HR@5", "HR@10", "MRR", "NDCG")


def _html(summary: DemoSummary, analytics_report: str | None) -> str:
    charts = [
        c
        for c in (
            _segments_chart(summary),
            _models_chart(summary),
            _pushes_chart(summary),
            _kinds_chart(summary),
        )
        if c
    ]
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>Rapport demo</title>",
        "<style>body{font-family:sans-serif;max-width:60em;margin:auto;padding:0 12px}"
        "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 6px;font-size:90%;"
        "vertical-align:top;text-align:left}.table{max-width:100%;overflow-x:auto}img{max-width:100%}"
        "pre{white-space:pre-wrap}</style></head><body>",
        "<h1>Rapport demo</h1>",
        "<pre>" + html.escape("\n".join(summary_lines(summary))) + "</pre>",
        "<h2>Did the re-engagement push work?</h2>",
        _pushes_html(summary),
        *[f"<img src='{chart}' alt='chart'>" for chart in charts],
        "<h2>Which message worked best?</h2>",
        _experiment_html(summary.experiment),
        "<h2>What the numbers mean</h2>",
        "<ul>" + "".join(f"<li>{html.escape(glossary_sentence(t))}</li>" for t in GLOSSARY_TERMS) + "</ul>",
        "<h2>Segments</h2>",
        _table(
            [
                {**s, "hidden_types": _types(s["hidden_types"]), "purity": f"{s['purity']:.0%}"}
                for s in summary.segments
            ],
            empty="No segments: the analytics step found no users to segment.",
        ),
        "<h2>Next-event models</h2>",
        _table(
            [{"model": name, **values} for name, values in summary.models.items()],
            empty="No model was evaluated (too few held-out events).",
        ),
        "<h2>How this run was made</h2>",
        "<ul>" + "".join(f"<li>{html.escape(line)}</li>" for line in summary.method) + "</ul>",
        "<h2>Timings (s)</h2>",
        _table([{k: f"{v:.1f}" for k, v in summary.timings_s.items()}]),
    ]
    if analytics_report:
        parts.append(
            f"<p>Full analytics report: <a href='{html.escape(analytics_report)}'>"
            f"{html.escape(analytics_report)}</a></p>"
        )
    parts.append("</body></html>")
    return "\n".join(parts)


def write_outputs(
    summary: DemoSummary, out: Path, *, analytics_report: str | None = None
) -> tuple[Path, Path]:
    """Write `report.html` and `summary.json` under `out`; returns their paths."""
    out.mkdir(parents=True, exist_ok=True)
    json_path = out / "summary.json"
    json_path.write_text(json.dumps(asdict(summary), indent=2, ensure_ascii=False), encoding="utf-8")
    html_path = out / "report.html"
    html_path.write_text(_html(summary, analytics_report), encoding="utf-8")
    logger.info("demo report written to %s", html_path)
    return html_path, json_path
