"""Eval output: a terminal table, one JSON object, and an HTML report (plotly charts, jinja2)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from evals.scoring import FAILURE_CLASSES

# (label, path into the metrics dict, higher is better)
HEADLINE: list[tuple[str, tuple[str, ...], bool]] = [
    ("recall@1", ("retrieval", "recall@1"), True),
    ("recall@3", ("retrieval", "recall@3"), True),
    ("recall@5", ("retrieval", "recall@5"), True),
    ("MRR@10", ("retrieval", "mrr@10"), True),
    ("nDCG@10", ("retrieval", "ndcg@10"), True),
    ("key-fact coverage", ("fact_coverage",), True),
    ("all facts present", ("fact_all",), True),
    ("answer words (mean)", ("answer_words",), False),
    ("false declines", ("false_declines",), False),
    ("adjacent topics declined", ("adjacent_declined",), True),
    ("answers with hygiene defects", ("hygiene_defects",), False),
    ("quote verbatim", ("citations", "quote_verbatim"), True),
    ("quote precision", ("citations", "quote_precision"), True),
    ("citation recall", ("citations", "citation_recall"), True),
    ("cited sentences", ("citations", "cited_sentence_share"), True),
    ("abstain precision", ("abstain", "precision"), True),
    ("abstain recall", ("abstain", "recall"), True),
    ("abstain F1", ("abstain", "f1"), True),
    ("latency p50 ms", ("latency_ms", "p50"), False),
    ("latency p95 ms", ("latency_ms", "p95"), False),
]


def get(metrics: dict[str, Any], path: tuple[str, ...]) -> float | None:
    cur: Any = metrics
    for p in path:
        if not isinstance(cur, dict) or p not in cur:
            return None
        cur = cur[p]
    return float(cur) if isinstance(cur, (int, float)) else None


def failing(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows that failed, grouped by failure class (in ``FAILURE_CLASSES`` order), each with why."""
    order = {c: i for i, c in enumerate(FAILURE_CLASSES)}
    out = []
    for r in rows:
        failure = r.get("failure")
        if any(not c["verbatim"] for c in r["citations"]):
            out.append((-1, r, "a quote is not verbatim"))
        elif failure:
            detail = {"hygiene": "; ".join(r.get("defects", [])), "missing context": "opens with a dangling pronoun"}
            missing = "missing: " + "; ".join(r["missing_facts"]) if r["missing_facts"] else ""
            why = detail.get(failure) or ("" if "decline" in failure else missing)
            out.append((order[failure], r, f"{failure}: {why}" if why else failure))
    ranked = sorted(out, key=lambda x: (x[0], x[1].get("fact_coverage", 0)))
    return [dict(r, why=why) for _, r, why in ranked]


def print_report(result: dict[str, Any], previous: dict[str, Any] | None = None, max_failures: int = 15) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    fails = failing(result["rows"])
    if fails:
        counts = result.get("failures", {})
        console.print("Failures by class: " + ", ".join(f"{c} {n}" for c, n in counts.items() if n))
        t = Table(title=f"Failing questions ({len(fails)} of {result['n_questions']})", show_lines=False)
        for col in ("id", "kind", "question", "why"):
            t.add_column(col, overflow="fold", max_width=60 if col != "id" else 6)
        for r in fails[:max_failures]:
            t.add_row(r["id"], r["kind"], r["question"], r["why"])
        console.print(t)
    t = Table(title=f"Stride vs baselines — split {result.get('split', '?')}, {result['n_questions']} questions")
    t.add_column("metric")
    t.add_column("Stride", justify="right")
    t.add_column("hybrid top chunk", justify="right")
    t.add_column("LangChain", justify="right")
    if previous:
        t.add_column("Δ vs previous", justify="right")
    base, hybrid = result.get("baseline", {}), result.get("baseline_hybrid", {})
    for label, path, higher in HEADLINE:
        v, h, b = get(result, path), get(hybrid, path), get(base, path)
        row = [label, *("—" if x is None else f"{x:.3f}" for x in (v, h, b))]
        if previous:
            p = get(previous, path)
            if v is None or p is None:
                row.append("—")
            else:
                d = v - p
                good = (d >= 0) == higher
                row.append(f"[{'green' if good or d == 0 else 'red'}]{d:+.3f}[/]")
        t.add_row(*row)
    console.print(t)


def write_html(result: dict[str, Any], path: Path, previous: dict[str, Any] | None = None) -> None:
    import plotly.graph_objects as go
    import plotly.offline
    from jinja2 import Environment, FileSystemLoader, select_autoescape

    base = result.get("baseline", {})
    quality = [(label, p) for label, p, higher in HEADLINE if higher]
    labels = [label for label, _ in quality]
    fig = go.Figure()
    fig.add_bar(name="Stride", x=labels, y=[get(result, p) or 0 for _, p in quality], marker_color="#1f7a5a")
    fig.add_bar(name="LangChain baseline", x=labels, y=[get(base, p) or 0 for _, p in quality], marker_color="#9aa5b1")
    if previous:
        fig.add_scatter(name="previous run", x=labels, y=[get(previous, p) or 0 for _, p in quality],
                        mode="markers", marker={"symbol": "diamond", "size": 10, "color": "#d9822b"})
    fig.update_layout(barmode="group", yaxis={"range": [0, 1.05], "title": "score"}, height=420,
                      margin={"l": 50, "r": 20, "t": 30, "b": 120}, legend={"orientation": "h", "y": 1.1})
    words = go.Figure()
    words.add_box(y=[r["words"] for r in result["rows"] if r["answerable"] and not r["abstained"]], name="Stride")
    words.add_box(y=[r["words"] for r in base.get("rows", []) if r["answerable"]], name="baseline")
    words.update_layout(height=320, yaxis={"title": "answer words"}, margin={"l": 50, "r": 20, "t": 20, "b": 40})
    rows_by_id = {r["id"]: r for r in base.get("rows", [])}
    prev_rows = {r["id"]: r for r in (previous or {}).get("rows", [])}
    metrics = []
    for label, p, higher in HEADLINE:
        v, b, pv = get(result, p), get(base, p), get(previous or {}, p)
        metrics.append({"label": label, "value": v, "baseline": b, "delta": None if v is None or pv is None else v - pv,
                        "higher": higher})
    env = Environment(loader=FileSystemLoader(Path(__file__).with_name("templates")), autoescape=select_autoescape())
    html = env.get_template("report.html.j2").render(
        result=result, metrics=metrics, fails={r["id"]: r["why"] for r in failing(result["rows"])},
        base_rows=rows_by_id, prev_rows=prev_rows,
        plotly_js=plotly.offline.get_plotlyjs(),
        chart=fig.to_html(full_html=False, include_plotlyjs=False),
        words_chart=words.to_html(full_html=False, include_plotlyjs=False),
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(html, encoding="utf-8")


def load_previous(path: Path) -> dict[str, Any]:
    try:
        previous: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        return previous
    except (OSError, json.JSONDecodeError) as err:
        raise ValueError(f"cannot read previous results {path}: {err}") from err
