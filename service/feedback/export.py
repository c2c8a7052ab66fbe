"""Feedback as a team acts on it: export rows (CSV or JSON) and the admin page of recent thumbs-down.
Pure apart from reading the store: each row carries the question, the answer, its sources and the comment."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from jinja2 import Environment, select_autoescape

from ingest.settings import Settings
from service.feedback.store import open_existing

Rating = Literal["up", "down"]
Format = Literal["csv", "json"]
COLUMNS = ["ts", "rating", "comment", "question", "answer", "sources", "query_id", "index_version"]


def read_feedback(settings: Settings, since_days: int | None = None, rating: Rating | None = None,
                  limit: int = 1_000_000) -> list[dict[str, Any]]:
    """Feedback rows, newest first, from the configured store (``store.open_existing``: exporting never prunes,
    and never creates the SQLite file; [] when nothing was ever stored). A store that cannot be opened is a
    DatabaseUnavailable, one line."""
    store = open_existing(settings)
    if store is None:
        return []
    try:
        since = datetime.now(UTC) - timedelta(days=since_days) if since_days is not None else None
        return [export_row(r) for r in store.feedback(limit, since, {"up": 1, "down": -1}[rating] if rating else None)]
    finally:
        store.close()


def sources_text(citations: Sequence[dict[str, Any]]) -> str:
    """``[n] Title › Section: "quote"`` per citation, one per line: what a spreadsheet cell can show."""
    return "\n".join(f'[{c["n"]}] {c["title"]}' + (f' › {c["section"]}' if c.get("section") else "")
                     + f': "{" ".join(str(c["quote"]).split())}"' for c in citations)


def export_row(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "ts": row["ts"], "rating": "up" if row["rating"] > 0 else "down", "comment": row.get("comment") or "",
        "question": row["question"], "answer": row["answer"], "sources": sources_text(row.get("citations") or []),
        "citations": row.get("citations") or [], "query_id": row["query_id"],
        "index_version": (row.get("provenance") or {}).get("index_version"),
    }


def to_csv(rows: Sequence[dict[str, Any]]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def to_json(rows: Sequence[dict[str, Any]]) -> str:
    return json.dumps([{k: r[k] for k in [*COLUMNS, "citations"]} for r in rows], ensure_ascii=False, indent=1)


_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Stride · thumbs-down</title>
<style>
body{font:15px/1.5 system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#1d2939}
h1{font-size:1.4rem} .muted{color:#667085;font-size:.85rem} article{border:1px solid #d0d5dd;border-radius:8px;
padding:1rem;margin:1rem 0} .q{font-weight:600} .comment{background:#fef3f2;border-left:3px solid #b42318;
padding:.4rem .7rem;margin:.6rem 0} .answer{white-space:pre-wrap} ol{padding-left:1.4rem} blockquote{margin:.2rem 0;
color:#344054}
</style></head><body>
<h1>Thumbs-down, newest first</h1>
<p class="muted">{{ rows|length }} shown{% if rows|length == limit %} (the newest {{ limit }}){% endif %}.
Export all feedback with <code>stride feedback --rating down --format csv</code>.</p>
{% for r in rows %}
<article>
  <p class="muted">{{ r.ts }} · query {{ r.query_id }} · index {{ r.index_version or "?" }}</p>
  <p class="q">{{ r.question }}</p>
  {% if r.comment %}<p class="comment">{{ r.comment }}</p>{% endif %}
  <p class="answer">{{ r.answer }}</p>
  {% if r.citations %}<ol>{% for c in r.citations %}<li value="{{ c.n }}"><b>{{ c.title }}</b>{% if c.section %}
  › {{ c.section }}{% endif %}<blockquote>{{ c.quote }}</blockquote></li>{% endfor %}</ol>
  {% else %}<p class="muted">No sources: Stride declined.</p>{% endif %}
</article>
{% else %}
<p>No thumbs-down yet.</p>
{% endfor %}
</body></html>
"""
_ENV = Environment(autoescape=select_autoescape(default=True, default_for_string=True))


def render_page(rows: Sequence[dict[str, Any]], limit: int) -> str:
    return _ENV.from_string(_PAGE).render(rows=rows, limit=limit)
