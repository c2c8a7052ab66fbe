"""The query log and the thumbs up/down store: one small SQLite file, ``<data_dir>/feedback.sqlite``.

Every answered or declined chat question is logged (``queries``) so the UI can attach feedback to it and
the coverage report can see what people ask. A feedback row copies the question, answer, citations and
provenance of its query, so it stays meaningful after the query log is pruned or the index is rebuilt.
One feedback row per query: voting again (or adding a comment) replaces the earlier vote.

The query log is written in the background (``writer.QueryLogWriter``): a chat answer never waits for the
database, even while another process holds its write lock.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from ingest.settings import Settings
from service.feedback.writer import QueryLogStats, QueryLogWriter

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


_DELETE_BEYOND_CAP = (
    "DELETE FROM queries WHERE rowid IN (SELECT rowid FROM queries ORDER BY ts DESC, rowid DESC LIMIT -1 OFFSET ?)"
)


class UnknownQuery(LookupError):
    """Feedback names a query id the log does not hold (never logged, or pruned)."""

    def __init__(self, query_id: str) -> None:
        super().__init__(f"unknown query_id {query_id!r}: it was never logged or has been pruned")
        self.query_id = query_id


class StoreUnavailable(RuntimeError):
    """The database cannot be written right now: another process holds its write lock, or the disk failed.
    Transient by nature, so callers answer "try again" (HTTP 503 with ``Retry-After``), not a bug."""

    retry_after = 5  # seconds; a lock held by a backup or a long transaction, not a blip


# One query-log row, serialised on the caller's thread (id, ts, question, history_json, answer, abstained,
# confidence, citations_json, provenance_json): a value that cannot be encoded fails there, not as a lost batch.
QueryRow = tuple[str, str, str, str, str, int, float | None, str, str]

_INSERT_QUERY = (
    "INSERT INTO queries (id, ts, question, history_json, answer, abstained, confidence,"
    " citations_json, provenance_json) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _ts(when: datetime) -> str:
    # One fixed-width UTC format, so timestamps compare correctly as text in SQL (prune, ORDER BY).
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@contextmanager
def _write_transaction(db: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    # BEGIN IMMEDIATE takes the write lock up front, where SQLite's busy timeout applies; a deferred
    # transaction that upgrades to a write in WAL mode can fail at once with "database is locked".
    db.execute("BEGIN IMMEDIATE")
    try:
        yield db
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise


class FeedbackStore:
    """Thread-safe. Two connections, so a stuck write lock never reaches a request:

    - the query-log writer's own connection, used only by its thread (``QueryLogWriter``), with a short busy
      timeout: a locked database is handled by the writer's retry loop, which keeps the rows in memory;
    - a shared connection for reads and feedback, serialised by a lock, with a busy timeout of ``busy_timeout``
      seconds; past it a feedback write raises ``StoreUnavailable``. Reads never wait for a writer (WAL).

    ``log_query`` only queues the row, so reads flush the writer first (bounded by ``lookup_wait`` seconds)
    to see the rows this process logged.
    """

    def __init__(
        self,
        path: Path,
        retention_days: int | None = None,
        clock: Callable[[], datetime] = _utcnow,
        *,
        queue_size: int = 10_000,
        busy_timeout: float = 1.0,
        writer_busy_timeout: float = 0.05,
        lookup_wait: float = 1.0,
        max_queries: int | None = None,
    ) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._clock = clock
        self._retention_days = retention_days
        self._lookup_wait = lookup_wait
        self._max_queries = max_queries
        self._since_cap = 0  # rows written since the size cap was last enforced
        self._pruned_at: datetime | None = None
        self._lock = threading.Lock()
        # Opening may wait up to 10 s for a lock (creating the schema): that is startup, not a request.
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=10)
        self._db.row_factory = sqlite3.Row
        with self._lock:
            # WAL lets the coverage report read while the service writes.
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_SCHEMA)
            self._db.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
        self._wdb = sqlite3.connect(
            self.path, check_same_thread=False, isolation_level=None, timeout=writer_busy_timeout
        )
        self._wdb.execute("PRAGMA synchronous=NORMAL")
        self._writer: QueryLogWriter[QueryRow] = QueryLogWriter(self._insert_queries, max_pending=queue_size)
        if retention_days is not None:
            try:
                self.prune(retention_days)
            except sqlite3.OperationalError as err:
                # Not fatal: chat and feedback work without it, and the writer prunes with its next batch.
                log.warning("could not prune the feedback store at start (%s); will retry", err)

    @classmethod
    def for_settings(cls, settings: Settings) -> FeedbackStore:
        return cls(settings.data_dir / FILENAME, settings.feedback_retention_days,
                   max_queries=settings.feedback_max_queries)

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every query logged so far is in the database; False if ``timeout`` passed first."""
        return self._writer.flush(timeout)

    def query_log_stats(self) -> QueryLogStats:
        """Pending and dropped query-log rows, for /metrics."""
        return self._writer.stats()

    def close(self, timeout: float = 5.0) -> bool:
        """Write the queued query log (waiting up to ``timeout`` seconds for a locked database), then close.
        Returns False when rows had to be abandoned (they are counted and logged)."""
        written = self._writer.close(timeout)
        with self._lock:
            self._db.close()
        self._wdb.close()
        return written

    # --- writes -------------------------------------------------------------------------
    def log_query(
        self, question: str, history: Sequence[Mapping[str, Any]], result: Mapping[str, Any]
    ) -> str | None:
        """Queue one chat exchange for the log (``result`` is ``ChatResult.as_dict()``) and return its new
        query id at once, without waiting for the database. None when the log is so far behind that the row
        was dropped: nobody is then offered feedback on a query that will never be found."""
        query_id = uuid.uuid4().hex  # unguessable: feedback can only be attached to queries one was shown
        provenance = dict(result.get("provenance") or {})
        row: QueryRow = (
            query_id, _ts(self._clock()), question, json.dumps([dict(m) for m in history]),
            result["answer"], int(bool(result["abstained"])), provenance.get("confidence"),
            json.dumps(result.get("citations") or []), json.dumps(provenance),
        )
        return query_id if self._writer.submit(row) else None

    def _insert_queries(self, rows: Sequence[QueryRow]) -> None:
        """The writer thread's batch: all rows in one transaction, plus the periodic prune (a long-running
        server keeps to the retention period) so it too stays off the request path."""
        now, retention = self._clock(), self._retention_days
        due = retention is not None and (self._pruned_at is None or now - self._pruned_at >= PRUNE_EVERY)
        self._since_cap += len(rows)
        # Anyone can grow the log by asking: keep it to a size as well as an age. Checked once per tenth of
        # the cap written, so the delete's index scan stays off most batches.
        capped = self._max_queries is not None and self._since_cap >= max(1, self._max_queries // 10)
        with _write_transaction(self._wdb) as db:
            db.executemany(_INSERT_QUERY, rows)
            # After the insert, so a row that is already past retention when written goes too.
            pruned = self._delete_older(db, now, retention) if due and retention is not None else None
            if capped:
                over = db.execute(_DELETE_BEYOND_CAP, (self._max_queries,)).rowcount
                if over:
                    log.info("pruned the %d oldest queries beyond the cap of %d", over, self._max_queries)
        if capped:
            self._since_cap = 0
        if pruned is not None:
            self._pruned_at = now
            self._log_pruned(pruned, retention)

    def add_feedback(self, query_id: str, rating: int, comment: str | None = None) -> int:
        """Record (or replace) the vote on a logged query. Raises UnknownQuery, ValueError on a bad rating,
        and StoreUnavailable when the database cannot be written now (locked by another process)."""
        if rating not in (1, -1):
            raise ValueError("rating must be +1 or -1")
        if comment is not None:
            comment = comment.strip() or None
            if comment and len(comment) > MAX_COMMENT_CHARS:
                raise ValueError(f"comment must be at most {MAX_COMMENT_CHARS} characters")
        try:
            row = self._lookup(query_id)
            if row is None:
                # The query may still be queued (voted on within moments of the answer): let the writer
                # catch up, briefly, and look again. flush() returns at once when nothing is queued.
                caught_up = self._writer.flush(self._lookup_wait)
                row = self._lookup(query_id)
                if row is None and not caught_up:
                    raise StoreUnavailable("the query log is behind (the database is busy); try again shortly")
            if row is None:
                raise UnknownQuery(query_id)
            with self._lock:
                cur = self._db.execute(
                    "INSERT INTO feedback (ts, query_id, rating, comment, question, answer, citations_json,"
                    " provenance_json) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
                    " ON CONFLICT (query_id) DO UPDATE SET ts = excluded.ts, rating = excluded.rating,"
                    " comment = excluded.comment RETURNING id",
                    (_ts(self._clock()), query_id, rating, comment, row["question"], row["answer"],
                     row["citations_json"], row["provenance_json"]),
                )
                return int(cur.fetchone()[0])
        except sqlite3.OperationalError as err:  # "database is locked" past the busy timeout, a full disk
            raise StoreUnavailable(f"feedback cannot be stored right now ({err}); try again shortly") from err

    def _lookup(self, query_id: str) -> sqlite3.Row | None:
        with self._lock:
            row: sqlite3.Row | None = self._db.execute(
                "SELECT question, answer, citations_json, provenance_json FROM queries WHERE id = ?", (query_id,)
            ).fetchone()
        return row

    def prune(self, retention_days: int) -> tuple[int, int]:
        """Delete queries and feedback older than ``retention_days``; returns (queries, feedback) deleted."""
        now = self._clock()
        with self._lock, _write_transaction(self._db) as db:
            pruned = self._delete_older(db, now, retention_days)
        self._pruned_at = now
        self._log_pruned(pruned, retention_days)
        return pruned

    @staticmethod
    def _delete_older(db: sqlite3.Connection, now: datetime, retention_days: int) -> tuple[int, int]:
        cutoff = _ts(now - timedelta(days=retention_days))
        q = db.execute("DELETE FROM queries WHERE ts < ?", (cutoff,)).rowcount
        f = db.execute("DELETE FROM feedback WHERE ts < ?", (cutoff,)).rowcount
        return q, f

    @staticmethod
    def _log_pruned(pruned: tuple[int, int], retention_days: int | None) -> None:
        if any(pruned):
            log.info("pruned %d queries and %d feedback rows older than %s days", *pruned, retention_days)

    # --- reads --------------------------------------------------------------------------
    def queries(self, limit: int = 100, since: datetime | None = None) -> list[dict[str, Any]]:
        """The newest logged queries first, JSON columns decoded (including those still queued a moment ago)."""
        self._writer.flush(self._lookup_wait)
        return self._select("queries", limit, since)

    def feedback(self, limit: int = 100, since: datetime | None = None, rating: int | None = None
                 ) -> list[dict[str, Any]]:
        """The newest feedback first, JSON columns decoded; ``rating`` is +1 or -1 (and filters when given)."""
        return self._select("feedback", limit, since, rating)

    def query_log_mark(self) -> tuple[int, int]:
        """(rows, newest rowid) of the query log: it changes whenever a row is written or pruned, so a
        report built from the log can be reused until it does."""
        self._writer.flush(self._lookup_wait)
        with self._lock:
            count, newest = self._db.execute("SELECT count(*), coalesce(max(rowid), 0) FROM queries").fetchone()
        return int(count), int(newest)

    def iter_queries(self, since: datetime | None = None) -> Iterator[dict[str, Any]]:
        """Every logged query, oldest first, as {id, ts, question, abstained, confidence} (for coverage reports)."""
        # Best effort, bounded: with the database locked the report shows what is written so far.
        self._writer.flush(self._lookup_wait)
        sql = "SELECT id, ts, question, abstained, confidence FROM queries"
        args: tuple[Any, ...] = ()
        if since is not None:
            sql, args = sql + " WHERE ts >= ?", (_ts(since),)
        with self._lock:
            rows = self._db.execute(sql + " ORDER BY ts, rowid", args).fetchall()
        for r in rows:
            yield {"id": r["id"], "ts": r["ts"], "question": r["question"], "abstained": bool(r["abstained"]),
                   "confidence": r["confidence"]}

    def _select(self, table: str, limit: int, since: datetime | None, rating: int | None = None
                ) -> list[dict[str, Any]]:
        sql = f"SELECT * FROM {table}"  # table is one of two literals above, never user input
        where: list[str] = []
        args: list[Any] = []
        if since is not None:
            where.append("ts >= ?")
            args.append(_ts(since))
        if rating is not None:
            where.append("rating = ?")
            args.append(int(rating))
        if where:
            sql += " WHERE " + " AND ".join(where)
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
