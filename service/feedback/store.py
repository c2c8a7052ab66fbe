"""The query log and the thumbs up/down store: one small SQLite file, ``<data_dir>/feedback.sqlite``.

Every answered or declined chat question is logged (``queries``) so the UI can attach feedback to it and
the coverage report can see what people ask. A feedback row copies the question, answer, citations and
provenance of its query, so it stays meaningful after the query log is pruned or the index is rebuilt.
One feedback row per query: voting again (or adding a comment) replaces the earlier vote.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from ingest.settings import Settings

log = logging.getLogger(__name__)

FILENAME = "feedback.sqlite"
MAX_COMMENT_CHARS = 2000
PRUNE_EVERY = timedelta(days=1)  # a long-running server keeps to the retention period, not only at start

_SCHEMA = """
CREATE TABLE IF NOT EXISTS queries (
    id              TEXT PRIMARY KEY,
    ts              TEXT NOT NULL,
    question        TEXT NOT NULL,
    history_json    TEXT NOT NULL,
    answer          TEXT NOT NULL,
    abstained       INTEGER NOT NULL,
    confidence      REAL,
    citations_json  TEXT NOT NULL,
    provenance_json TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS queries_ts ON queries (ts);
CREATE TABLE IF NOT EXISTS feedback (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    ts              TEXT NOT NULL,
    query_id        TEXT NOT NULL UNIQUE,
    rating          INTEGER NOT NULL CHECK (rating IN (-1, 1)),
    comment         TEXT,
    question        TEXT NOT NULL,
    answer          TEXT NOT NULL,
    citations_json  TEXT NOT NULL,
    provenance_json TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS feedback_ts ON feedback (ts);
"""


class UnknownQuery(LookupError):
    """Feedback names a query id the log does not hold (never logged, or pruned)."""

    def __init__(self, query_id: str) -> None:
        super().__init__(f"unknown query_id {query_id!r}: it was never logged or has been pruned")
        self.query_id = query_id


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _ts(when: datetime) -> str:
    # One fixed-width UTC format, so timestamps compare correctly as text in SQL (prune, ORDER BY).
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class FeedbackStore:
    """Thread-safe: one connection shared by the request threads, serialised by a lock."""

    def __init__(
        self, path: Path, retention_days: int | None = None, clock: Callable[[], datetime] = _utcnow
    ) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._clock = clock
        self._retention_days = retention_days
        self._pruned_at: datetime | None = None
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=10)
        self._db.row_factory = sqlite3.Row
        with self._lock:
            # WAL lets the coverage report read while the service writes.
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_SCHEMA)
        if retention_days is not None:
            self.prune(retention_days)

    @classmethod
    def for_settings(cls, settings: Settings) -> FeedbackStore:
        return cls(settings.data_dir / FILENAME, settings.feedback_retention_days)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # --- writes -------------------------------------------------------------------------
    def log_query(self, question: str, history: Sequence[Mapping[str, Any]], result: Mapping[str, Any]) -> str:
        """Log one chat exchange (``result`` is ``ChatResult.as_dict()``); returns its new query id."""
        query_id = uuid.uuid4().hex  # unguessable: feedback can only be attached to queries one was shown
        provenance = dict(result.get("provenance") or {})
        if self._retention_days is not None and (
            self._pruned_at is None or self._clock() - self._pruned_at >= PRUNE_EVERY
        ):
            self.prune(self._retention_days)
        with self._lock:
            self._db.execute(
                "INSERT INTO queries (id, ts, question, history_json, answer, abstained, confidence,"
                " citations_json, provenance_json) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    query_id, _ts(self._clock()), question, json.dumps([dict(m) for m in history]),
                    result["answer"], int(bool(result["abstained"])), provenance.get("confidence"),
                    json.dumps(result.get("citations") or []), json.dumps(provenance),
                ),
            )
        return query_id

    def add_feedback(self, query_id: str, rating: int, comment: str | None = None) -> int:
        """Record (or replace) the vote on a logged query; raises UnknownQuery, ValueError on a bad rating."""
        if rating not in (1, -1):
            raise ValueError("rating must be +1 or -1")
        if comment is not None:
            comment = comment.strip() or None
            if comment and len(comment) > MAX_COMMENT_CHARS:
                raise ValueError(f"comment must be at most {MAX_COMMENT_CHARS} characters")
        with self._lock:
            row = self._db.execute(
                "SELECT question, answer, citations_json, provenance_json FROM queries WHERE id = ?", (query_id,)
            ).fetchone()
            if row is None:
                raise UnknownQuery(query_id)
            cur = self._db.execute(
                "INSERT INTO feedback (ts, query_id, rating, comment, question, answer, citations_json,"
                " provenance_json) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (query_id) DO UPDATE SET ts = excluded.ts, rating = excluded.rating,"
                " comment = excluded.comment RETURNING id",
                (_ts(self._clock()), query_id, rating, comment, row["question"], row["answer"],
                 row["citations_json"], row["provenance_json"]),
            )
            return int(cur.fetchone()[0])

    def prune(self, retention_days: int) -> tuple[int, int]:
        """Delete queries and feedback older than ``retention_days``; returns (queries, feedback) deleted."""
        now = self._clock()
        cutoff = _ts(now - timedelta(days=retention_days))
        with self._lock:
            self._pruned_at = now
            q = self._db.execute("DELETE FROM queries WHERE ts < ?", (cutoff,)).rowcount
            f = self._db.execute("DELETE FROM feedback WHERE ts < ?", (cutoff,)).rowcount
        if q or f:
            log.info("pruned %d queries and %d feedback rows older than %d days", q, f, retention_days)
        return q, f

    # --- reads --------------------------------------------------------------------------
    def queries(self, limit: int = 100, since: datetime | None = None) -> list[dict[str, Any]]:
        """The newest logged queries first, JSON columns decoded."""
        return self._select("queries", limit, since)

    def feedback(self, limit: int = 100, since: datetime | None = None) -> list[dict[str, Any]]:
        """The newest feedback first, JSON columns decoded; ``rating`` is +1 or -1."""
        return self._select("feedback", limit, since)

    def iter_queries(self, since: datetime | None = None) -> Iterator[dict[str, Any]]:
        """Every logged query, oldest first, as {id, ts, question, abstained, confidence} (for coverage reports)."""
        sql = "SELECT id, ts, question, abstained, confidence FROM queries"
        args: tuple[Any, ...] = ()
        if since is not None:
            sql, args = sql + " WHERE ts >= ?", (_ts(since),)
        with self._lock:
            rows = self._db.execute(sql + " ORDER BY ts, rowid", args).fetchall()
        for r in rows:
            yield {"id": r["id"], "ts": r["ts"], "question": r["question"], "abstained": bool(r["abstained"]),
                   "confidence": r["confidence"]}

    def _select(self, table: str, limit: int, since: datetime | None) -> list[dict[str, Any]]:
        sql = f"SELECT * FROM {table}"  # table is one of two literals above, never user input
        args: list[Any] = []
        if since is not None:
            sql += " WHERE ts >= ?"
            args.append(_ts(since))
        sql += " ORDER BY ts DESC, rowid DESC LIMIT ?"
        args.append(int(limit))
        with self._lock:
            rows = self._db.execute(sql, args).fetchall()
        return [_decode(dict(r)) for r in rows]


def _decode(row: dict[str, Any]) -> dict[str, Any]:
    for key in [k for k in row if k.endswith("_json")]:
        row[key.removesuffix("_json")] = json.loads(row.pop(key))
    if "abstained" in row:
        row["abstained"] = bool(row["abstained"])
    return row


def open_store(settings: Settings) -> FeedbackStore | None:
    """The store for ``settings``, or None when it cannot be opened: chat keeps working without feedback."""
    try:
        return FeedbackStore.for_settings(settings)
    except (OSError, sqlite3.Error) as err:
        log.error("feedback store unavailable at %s: %s", settings.data_dir / FILENAME, err)
        return None
