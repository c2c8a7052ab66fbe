"""The gap clusters and their questions as CSV (one row per question, its cluster's columns repeated) and
JSON (the whole report), for planning tools. Pure: text out."""

from __future__ import annotations

import csv
import io

from service.coverage.gap_report import GapCluster, GapReport

CSV_HEADER = [
    "cluster_id", "cluster_rank", "cluster_label", "cluster_class", "cluster_asked", "cluster_distinct",
    "last_7_days", "last_30_days", "trend", "first_seen", "last_seen", "nearest_article", "nearest_section",
    "nearest_similarity", "status", "note", "closure", "closed_by", "question", "question_class", "times_asked",
    "declined", "lowest_confidence", "question_first_seen", "question_last_seen", "sources",
]


def status_of(c: GapCluster) -> tuple[str, str]:
    """(status, closure): "open" unless marked; a cluster marked written is "waiting" for an ingest,
    then "closed" or "still open"."""
    if c.mark is None:
        return "open", ""
    if c.closure is None:
        return c.mark.status, ""
    return c.mark.status, {"waiting": "waiting for ingest", "closed": "closed", "open": "still open"}[c.closure.state]


def gaps_csv(report: GapReport) -> str:
    out = io.StringIO()
    w = csv.writer(out)
    w.writerow(CSV_HEADER)
    for c in report.clusters:
        status, closed = status_of(c)
        head = [c.id, c.rank, c.label, c.gap_class, c.asked, c.distinct, c.trend.last_7_days, c.trend.last_30_days,
                c.trend.direction, c.first_seen or "", c.last_seen or "", c.nearest.title if c.nearest else "",
                c.nearest.section if c.nearest else "", c.nearest.similarity if c.nearest else "", status,
                c.mark.note or "" if c.mark else "", closed,
                c.closure.title or "" if c.closure and c.closure.state == "closed" else ""]
        for q in c.questions:
            w.writerow([*head, q.question, q.gap_class, q.asked, q.declined,
                        "" if q.lowest_confidence is None else q.lowest_confidence, q.first_seen or "",
                        q.last_seen or "", " ".join(q.sources)])
    return out.getvalue()


def gaps_json(report: GapReport) -> str:
    return report.model_dump_json(indent=1)
