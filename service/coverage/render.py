"""The coverage report's outputs: one HTML page (jinja2 + plotly, plotly.js inline so it opens
offline), coverage.json with all the data, and CSVs of the same tables."""

from __future__ import annotations

import csv
import json
import textwrap
from functools import lru_cache
from pathlib import Path
from typing import Any

from service.coverage.classify import CLASS_LABELS
from service.coverage.gap_export import gaps_csv, gaps_json
from service.coverage.gap_report import GapReport

TEMPLATES = Path(__file__).with_name("templates")
DIRECTIONS = {"new": "new this week", "rising": "↑ rising", "steady": "steady", "falling": "↓ falling",
              "quiet": "none lately"}
KINDS = [("muscle_group", "Muscle groups"), ("exercise", "Exercises"), ("theme", "Themes")]


def short_title(title: str, width: int = 15) -> str:
    """An article title cut to its first clause and wrapped for a heatmap column label (plotly breaks
    lines only at <br>); the hover shows the whole title."""
    for stop in ("?", ":"):
        head = title.split(stop, 1)[0] + (stop if stop == "?" else "")
        if len(head) >= 12 and len(head) < len(title):
            title = head
            break
    lines = textwrap.wrap(title, width)
    return "<br>".join(lines[:4]) + ("…" if len(lines) > 4 else "")


def _cells(data: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(c["topic"], c["article"]): c for c in data["cells"]}


def heatmap_figure(data: dict[str, Any]) -> Any:
    """Topic x article: one panel per topic kind, so muscle groups, exercises and themes read as groups."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    cells = _cells(data)
    articles = data["articles"]
    groups = [(label, [t for t in data["topics"] if t["kind"] == kind]) for kind, label in KINDS]
    groups += [("Other", [t for t in data["topics"] if t["kind"] not in {k for k, _ in KINDS}])]
    groups = [(label, ts) for label, ts in groups if ts]
    if not groups:
        return None
    fig = make_subplots(
        rows=len(groups), cols=1, shared_xaxes=True, vertical_spacing=0.045,
        row_heights=[len(ts) for _, ts in groups], subplot_titles=[label for label, _ in groups],
    )
    x = [short_title(a["title"]) for a in articles]
    zmax = 100  # a fixed scale: the same colour means the same share in every report
    for row, (_, topics) in enumerate(groups, 1):
        z, text, custom = [], [], []
        for t in topics:
            zr, tr, cr = [], [], []
            for a in articles:
                c = cells[(t["id"], a["id"])]
                zr.append(round(c["share"] * 100, 1))
                tr.append(f"{c['passages']}" if c["passages"] else "")
                cr.append([t["id"], a["id"], t["label"], a["title"], c["passages"], round(c["share"] * 100, 1)])
            z.append(zr)
            text.append(tr)
            custom.append(cr)
        fig.add_trace(go.Heatmap(
            z=z, x=x, y=[t["label"] for t in topics], text=text, texttemplate="%{text}",
            textfont={"size": 13}, customdata=custom, zmin=0, zmax=zmax, xgap=2, ygap=2,
            colorscale=[[0, "#f4f6f8"], [0.0001, "#e3eefa"], [0.35, "#8fb8e3"], [1, "#16324f"]],
            showscale=row == 1,
            # Horizontal, under the panels: a vertical bar would take width from the columns.
            colorbar={"title": {"text": "share of the article's text", "side": "top"}, "ticksuffix": "%",
                      "orientation": "h", "len": 0.6, "x": 1, "xanchor": "right", "y": 0, "yanchor": "top",
                      "ypad": 30, "thickness": 12},
            hovertemplate="<b>%{customdata[2]}</b><br>%{customdata[3]}<br>%{customdata[4]} passages · "
                          "%{customdata[5]}% of the article<br><i>click to list the passages</i><extra></extra>",
        ), row=row, col=1)
        fig.update_yaxes(autorange="reversed", tickfont={"size": 13}, row=row, col=1)
    # Column labels on top, level, where the eye starts; the lower panels share the columns.
    fig.update_xaxes(side="top", showticklabels=True, tickangle=0, tickfont={"size": 12}, row=1, col=1)
    fig.update_xaxes(showticklabels=False, row=len(groups), col=1)
    fig.update_layout(
        height=sum(len(ts) for _, ts in groups) * 28 + 50 * len(groups) + 190,
        margin={"l": 10, "r": 10, "t": 90, "b": 90}, plot_bgcolor="#fff", paper_bgcolor="#fff",
        font={"family": "system-ui, sans-serif", "color": "#1d2733"},
    )
    # Group headings sit over the row labels, right-aligned, clear of the column labels above row 1.
    for ann in fig.layout.annotations:
        ann.update(x=-0.01, xanchor="right", font={"size": 14, "color": "#16324f"}, text=f"<b>{ann.text}</b>")
    return fig


@lru_cache(maxsize=1)
def _plotly_js() -> str:
    from plotly.offline import get_plotlyjs

    return str(get_plotlyjs())


def _page_json(data: dict[str, Any]) -> str:
    """The data the page's script reads, safe inside <script>: no "</script>" or "<!--" can appear."""
    keep = {k: data[k] for k in ("topics", "articles", "cells", "passages")}
    return json.dumps(keep, ensure_ascii=False).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _div(fig: Any, div_id: str) -> str:
    if fig is None:
        return ""
    return str(fig.to_html(full_html=False, include_plotlyjs=False, div_id=div_id, default_width="100%",
                           config={"displayModeBar": False, "responsive": True}))


def render_html(data: dict[str, Any]) -> str:
    from jinja2 import Environment, FileSystemLoader, select_autoescape

    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html", "j2"]))
    titles = {a["id"]: a["title"] for a in data["articles"]}
    topic_labels = {t["id"]: t["label"] for t in data["topics"]}
    return env.get_template("report.html.j2").render(
        data=data, titles=titles, topic_labels=topic_labels, plotly_js=_plotly_js(), page_json=_page_json(data),
        heatmap=_div(heatmap_figure(data), "heatmap"), class_labels=CLASS_LABELS, directions=DIRECTIONS,
    )


# --- JSON and CSV ------------------------------------------------------------------------------

def write_json(data: dict[str, Any], path: Path) -> None:
    path.write_text(json.dumps(data, ensure_ascii=False, indent=1), encoding="utf-8")


def _write_csv(path: Path, header: list[str], rows: list[list[Any]]) -> None:
    with path.open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)


def write_csvs(data: dict[str, Any], out_dir: Path) -> list[Path]:
    """coverage.csv is the topic x article matrix (one row per cell); the other tables each get a CSV."""
    titles = {a["id"]: a["title"] for a in data["articles"]}
    topics = {t["id"]: t for t in data["topics"]}
    paths = {name: out_dir / f"{name}.csv" for name in ("coverage", "gaps", "overlap", "articles", "planted")}
    _write_csv(paths["coverage"],
               ["topic_id", "topic_label", "topic_kind", "article_id", "article_title", "passages", "chars",
                "share", "chunk_ids"],
               [[c["topic"], topics[c["topic"]]["label"], topics[c["topic"]]["kind"], c["article"],
                 titles.get(c["article"], c["article"]), c["passages"], c["chars"], c["share"],
                 " ".join(m["chunk_id"] for m in c["matches"])] for c in data["cells"]])
    paths["gaps"].write_text(gaps_csv(GapReport.model_validate(data["gaps"])), encoding="utf-8")
    _write_csv(paths["overlap"],
               ["cosine", "article_a", "section_a", "sentence_a", "article_b", "section_b", "sentence_b"],
               [[p["cosine"], p["a"]["article_id"], p["a"]["section"], p["a"]["text"], p["b"]["article_id"],
                 p["b"]["section"], p["b"]["text"]] for p in data["overlap"]["pairs"]])
    _write_csv(paths["articles"],
               ["article_id", "title", "file", "sha", "ingested_at", "num_chunks", "section", "level",
                "section_chunks", "eval_question_ids"],
               [[a["id"], a["title"], a["file"], a["sha"], a["ingested_at"], a["num_chunks"], s["label"], s["level"],
                 s["chunks"], " ".join(e["id"] for e in a["eval_questions"])]
                for a in data["articles"] for s in (a["sections"] or [{"label": "", "level": "", "chunks": 0}])])
    _write_csv(paths["planted"], ["article_id", "file", "line", "rule", "text"],
               [[p["article_id"], p["file"], p["line"], p["rule"], p["text"]] for p in data["planted"]])
    return list(paths.values())


def write_outputs(data: dict[str, Any], out_dir: Path) -> list[str]:
    """Write report.html, coverage.json, gaps.json and the CSVs into ``out_dir``; returns the file names."""
    out_dir.mkdir(parents=True, exist_ok=True)
    csvs = write_csvs(data, out_dir)
    (out_dir / "gaps.json").write_text(gaps_json(GapReport.model_validate(data["gaps"])), encoding="utf-8")
    names = ["report.html", "coverage.json", "gaps.json", *(p.name for p in csvs)]
    data = {**data, "files": names}
    (out_dir / "report.html").write_text(render_html(data), encoding="utf-8")
    write_json(data, out_dir / "coverage.json")
    return names
