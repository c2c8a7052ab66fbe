"""The query log and the thumbs up/down store: by default one small SQLite file, ``<data_dir>/feedback.sqlite``;
with ``STRIDE_DATABASE_URL`` set, a PostgreSQL database that several replicas share.

Every answered or declined chat question is logged (``queries``) so the UI can attach feedback to it and
the coverage report can see what people ask. A feedback row copies the question, answer, citations and
provenance of its query, so it stays meaningful after the query log is pruned or the index is rebuilt.
One feedback row per query: voting again (or adding a comment) replaces the earlier vote.

The query log is written in the background (``writer.QueryLogWriter``): a chat answer never waits for the
database, even while another process holds its write lock or the database server restarts.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import (
    REAL,
    BigInteger,
    CheckConstraint,
    Column,
    ColumnElement,
    Double,
    Identity,
    Index,
    Integer,
    MetaData,
    RowMapping,
    Table,
    Text,
    create_engine,
    delete,
    event,
    func,
    insert,
    literal_column,
    select,
    text,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlalchemy.pool import NullPool

from ingest.errors import StrideError
from ingest.settings import ENV_PREFIX, Settings
from service.feedback.writer import TRANSIENT_ERRORS, QueryLogStats, QueryLogWriter

log = logging.getLogger(__name__)

FILENAME = "feedback.sqlite"
MAX_COMMENT_CHARS = 2000
PRUNE_EVERY = timedelta(days=1)  # a long-running server keeps to the retention period, not only at start
URL_SETTING = f"{ENV_PREFIX}DATABASE_URL"
POSTGRES_URL = "postgresql+psycopg://USER:PASSWORD@HOST:5432/DATABASE"
CONNECT_TIMEOUT = 5  # seconds: a host that never answers is an error at start, not a hung server
_URL_FIX = (f"set it to {POSTGRES_URL} (percent-encode special characters in the password), "
            f"or unset it for the SQLite file in {ENV_PREFIX}DATA_DIR")
_WRITE = "stride_write"  # execution option: this transaction writes (SQLite then takes the write lock first)
_SCHEMA_LOCK = 0x5354524944  # advisory lock id ("STRID"): replicas starting together create the tables once


class UnknownQuery(LookupError):
    """Feedback names a query id the log does not hold (never logged, or pruned)."""

    def __init__(self, query_id: str) -> None:
        super().__init__(f"unknown query_id {query_id!r}: it was never logged or has been pruned")
        self.query_id = query_id


class StoreUnavailable(RuntimeError):
    """The database cannot be written right now: another process holds its write lock, the disk failed, or
    the database server does not answer. Transient by nature, so callers answer "try again" (HTTP 503 with
    ``Retry-After``), not a bug."""

    retry_after = 5  # seconds; a lock held by a backup or a long transaction, not a blip


class DatabaseUnavailable(StrideError):
    """The store cannot be opened: ``STRIDE_DATABASE_URL`` is wrong (not a URL, an unsupported database, a
    host that does not answer, refused credentials) or the SQLite file is unusable. One line, password masked."""


# One query-log row, serialised on the caller's thread: a value that cannot be encoded fails there, not as a
# lost batch.
QueryRow = dict[str, Any]


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _ts(when: datetime) -> str:
    # One fixed-width UTC format, so timestamps compare correctly as text in SQL (prune, ORDER BY).
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# --- the schema -----------------------------------------------------------------------------------------

def _schema(backend: str) -> tuple[MetaData, Table, Table]:
    """The tables as the SQLite file has always had them, so a server upgraded in place reads its old file.
    On PostgreSQL ``queries`` also has ``seq``, an identity column standing in for SQLite's implicit rowid:
    the insertion order that breaks ties in ``ts`` and moves the coverage page's watermark."""
    pg = backend == "postgresql"
    # Collation C on PostgreSQL: timestamps compare byte by byte, as in SQLite.
    ts = Text(collation="C") if pg else Text()
    metadata = MetaData()
    queries = Table(
        "queries", metadata,
        Column("id", Text, primary_key=True),
        Column("ts", ts, nullable=False),
        Column("question", Text, nullable=False),
        Column("history_json", Text, nullable=False),
        Column("answer", Text, nullable=False),
        Column("abstained", Integer, nullable=False),
        Column("confidence", Double().with_variant(REAL(), "sqlite")),  # PostgreSQL's REAL would round 0.71
        Column("citations_json", Text, nullable=False),
        Column("provenance_json", Text, nullable=False),
        *([Column("seq", BigInteger, Identity(), nullable=False, unique=True)] if pg else []),
    )
    Index("queries_ts", queries.c.ts, *([queries.c.seq] if pg else []))
    feedback = Table(
        "feedback", metadata,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("ts", ts, nullable=False),
        Column("query_id", Text, nullable=False, unique=True),
        Column("rating", Integer, CheckConstraint("rating IN (-1, 1)"), nullable=False),
        Column("comment", Text),
        Column("question", Text, nullable=False),
        Column("answer", Text, nullable=False),
        Column("citations_json", Text, nullable=False),
        Column("provenance_json", Text, nullable=False),
        sqlite_autoincrement=True,
    )
    Index("feedback_ts", feedback.c.ts)
    return metadata, queries, feedback


# --- the database URL -----------------------------------------------------------------------------------

def database_for(settings: Settings) -> Path | str:
    """Where ``settings`` keep feedback: ``STRIDE_DATABASE_URL`` when set, else the SQLite file in the data dir."""
    url = settings.database_url.get_secret_value().strip() if settings.database_url is not None else ""
    return url or Path(settings.data_dir) / FILENAME


def masked(url: URL) -> str:
    """``url`` as it may be printed: the password (also as a ``?password=`` parameter) becomes ***."""
    query = {k: ("***" if k.lower() == "password" else v) for k, v in url.query.items()}
    return url.set(query=query).render_as_string(hide_password=True)


def parse_database_url(raw: str) -> URL:
    """The SQLAlchemy URL in ``STRIDE_DATABASE_URL``, or DatabaseUnavailable saying what is wrong and what works.
    ``postgresql://`` and ``postgres://`` mean psycopg, the driver Stride installs."""
    try:
        url = make_url(raw.strip())
    except (ArgumentError, ValueError):
        # Unparsed, so where its password is is unknown: the value is not repeated.
        raise DatabaseUnavailable(f"{URL_SETTING} is not a database URL; {_URL_FIX}") from None
    if "@" in (url.host or ""):
        # Read as host: everything after an unencoded @ in the password, so even the masked URL would show it.
        raise DatabaseUnavailable(f"{URL_SETTING}: the password has an unencoded '@'; write it as %40") from None
    backend, _, driver = url.drivername.partition("+")
    if backend in ("postgresql", "postgres") and driver in ("", "psycopg"):
        return url.set(drivername="postgresql+psycopg")
    if backend == "sqlite" and driver in ("", "pysqlite"):
        if url.database in (None, "", ":memory:"):
            raise DatabaseUnavailable(
                f"{URL_SETTING}={masked(url)}: an in-memory SQLite database is private to one connection; "
                f"name a file (sqlite:////ABSOLUTE/PATH/feedback.sqlite) or {_URL_FIX}")
        return url
    raise DatabaseUnavailable(f"{URL_SETTING}={masked(url)}: unsupported database {url.drivername!r}; {_URL_FIX}")


def _reason(err: BaseException, url: URL) -> str:
    """The driver's own words on one line (not SQLAlchemy's wrapper with its SQL and link), password masked."""
    reason = " ".join(str(getattr(err, "orig", None) or err).split())
    for secret in (url.password, url.query.get("password")):
        if isinstance(secret, str) and secret:
            reason = reason.replace(secret, "***")
    return reason[:300]


# --- engines --------------------------------------------------------------------------------------------

def _sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    # pysqlite would begin transactions itself, deferred and only before DML; _sqlite_begin does it instead.
    dbapi_connection.isolation_level = None
    dbapi_connection.execute("PRAGMA synchronous=NORMAL")


def _sqlite_begin(conn: Connection) -> None:
    # BEGIN IMMEDIATE takes the write lock up front, where SQLite's busy timeout applies; a deferred
    # transaction that upgrades to a write in WAL mode can fail at once with "database is locked".
    conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get(_WRITE) else "BEGIN")


def _engine(url: URL, busy_timeout: float, pool_size: int | None, max_overflow: int = 0) -> Engine:
    """An engine whose writes give up after ``busy_timeout`` seconds of waiting for a lock; ``pool_size`` None:
    no pool, for a one-off connection."""
    pool: dict[str, Any] = ({"poolclass": NullPool} if pool_size is None
                            else {"pool_size": pool_size, "max_overflow": max_overflow})
    if url.get_backend_name() == "sqlite":
        sq = create_engine(url, connect_args={"timeout": busy_timeout, "check_same_thread": False}, **pool)
        event.listen(sq, "connect", _sqlite_connect)
        event.listen(sq, "begin", _sqlite_begin)
        return sq
    args = {} if "connect_timeout" in url.query else {"connect_timeout": CONNECT_TIMEOUT}
    # Pre-ping: after the database server restarts, a pooled connection is replaced rather than failing a request.
    pg = create_engine(url, connect_args=args, pool_pre_ping=True, **pool)
    lock_ms = max(1, round(busy_timeout * 1000))

    @event.listens_for(pg, "begin")
    def _lock_timeout(conn: Connection) -> None:
        # SQLite's busy timeout, on PostgreSQL. SET LOCAL lasts one transaction, so it is safe behind PgBouncer.
        conn.exec_driver_sql(f"SET LOCAL lock_timeout = {lock_ms}")

    return pg


class FeedbackStore:
    """Thread-safe. Two engines, so a stuck write lock never reaches a request:

    - the query-log writer's own, used only by its thread (``QueryLogWriter``), with a short busy timeout
      (``writer_busy_timeout``): a locked database is handled by the writer's retry loop, which keeps the rows in
      memory;
    - one for reads and feedback, whose writes wait ``busy_timeout`` seconds for a lock; past it a feedback
      write raises ``StoreUnavailable``. Reads never wait for a writer (SQLite's WAL; PostgreSQL's MVCC).

    ``database`` is a ``Path`` (the SQLite file there) or a database URL (see ``parse_database_url``).
    ``log_query`` only queues the row, so reads flush the writer first (bounded by ``lookup_wait`` seconds)
    to see the rows this process logged.
    """

    def __init__(
        self,
        database: Path | str,
        retention_days: int | None = None,
        clock: Callable[[], datetime] = _utcnow,
        *,
        queue_size: int = 10_000,
        busy_timeout: float = 1.0,
        writer_busy_timeout: float = 0.05,
        lookup_wait: float = 1.0,
        max_queries: int | None = None,
    ) -> None:
        named = isinstance(database, str)  # by STRIDE_DATABASE_URL, so errors name it
        url = (parse_database_url(database) if isinstance(database, str)
               else URL.create("sqlite", database=str(database)))
        self._url = url
        self.backend = url.get_backend_name()
        self.path = Path(str(url.database)) if self.backend == "sqlite" else None
        # Another replica may have logged a query this one is asked to attach a vote to.
        self._shared = self.backend != "sqlite"
        self._clock = clock
        self._retention_days = retention_days
        self._lookup_wait = lookup_wait
        self._max_queries = max_queries
        self._since_cap = 0  # rows written since the size cap was last enforced
        self._pruned_at: datetime | None = None
        self._metadata, self._queries, self._feedback = _schema(self.backend)
        # Insertion order: SQLite's implicit rowid, or the identity column that stands in for it.
        self._seq: ColumnElement[int] = (literal_column("rowid") if self.backend == "sqlite"
                                         else self._queries.c.seq)
        engines: list[Engine] = []
        try:
            # On SQLite a pool of one serialises this process's use of the file, as SQLite serialises writers
            # anyway: this process's own threads then never spend their busy timeout on each other.
            sqlite_file = self.backend == "sqlite"
            self._engine = _engine(url, busy_timeout, pool_size=1 if sqlite_file else 5,
                                   max_overflow=0 if sqlite_file else 10)
            engines.append(self._engine)
            self._create_schema(url)
            self._wengine = _engine(url, writer_busy_timeout, pool_size=1)
            engines.append(self._wengine)
        except (OSError, SQLAlchemyError) as err:
            for e in engines:
                e.dispose()
            where = f"{URL_SETTING}={masked(url)}" if named else f"the feedback store {self.path}"
            if self.backend == "sqlite":
                problem, fix = "cannot open it", "check that its directory is writable and the file is a Stride store"
            else:
                problem, fix = "cannot connect", ("check the host, port, user, password and database name, and that "
                                                  "the server accepts connections from here")
            raise DatabaseUnavailable(f"{where}: {problem} ({_reason(err, url)}); {fix}") from None
        self._writes = self._engine.execution_options(**{_WRITE: True})
        self._writer_writes = self._wengine.execution_options(**{_WRITE: True})
        self._writer: QueryLogWriter[QueryRow] = QueryLogWriter(self._insert_queries, max_pending=queue_size)
        if retention_days is not None:
            try:
                self.prune(retention_days)
            except TRANSIENT_ERRORS as err:
                # Not fatal: chat and feedback work without it, and the writer prunes with its next batch.
                log.warning("could not prune the feedback store at start (%s); will retry", _reason(err, url))

    def _create_schema(self, url: URL) -> None:
        if self.backend != "sqlite":
            with self._engine.begin() as conn:
                # Replicas starting together: the first creates the tables while the others wait, then find them.
                conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _SCHEMA_LOCK})
                self._metadata.create_all(conn)
            return
        assert self.path is not None
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # Opening may wait up to 10 s for a lock (creating the schema): that is startup, not a request.
        setup = _engine(url, 10.0, pool_size=None)
        try:
            with setup.connect() as conn:
                # WAL lets the coverage report read while the service writes; it is kept in the file, and it
                # cannot be switched on inside a transaction, hence on the driver's connection before any BEGIN.
                conn.connection.driver_connection.execute("PRAGMA journal_mode=WAL")  # type: ignore[union-attr]
                conn.execution_options(**{_WRITE: True})
                with conn.begin():
                    self._metadata.create_all(conn)
        finally:
            setup.dispose()

    @classmethod
    def for_settings(cls, settings: Settings) -> FeedbackStore:
        return cls(database_for(settings), settings.feedback_retention_days,
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
        self._engine.dispose()
        self._wengine.dispose()
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
        row: QueryRow = {
            "id": query_id, "ts": _ts(self._clock()), "question": question,
            "history_json": json.dumps([dict(m) for m in history]), "answer": result["answer"],
            "abstained": int(bool(result["abstained"])), "confidence": provenance.get("confidence"),
            "citations_json": json.dumps(result.get("citations") or []), "provenance_json": json.dumps(provenance),
        }
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
        with self._writer_writes.begin() as conn:
            conn.execute(insert(self._queries), list(rows))
            # After the insert, so a row that is already past retention when written goes too.
            pruned = self._delete_older(conn, now, retention) if due and retention is not None else None
            if capped:
                newest_first = select(self._seq).select_from(self._queries).order_by(
                    self._queries.c.ts.desc(), self._seq.desc()).offset(self._max_queries)
                over = conn.execute(delete(self._queries).where(self._seq.in_(newest_first))).rowcount
                if over:
                    log.info("pruned the %d oldest queries beyond the cap of %d", over, self._max_queries)
        if capped:
            self._since_cap = 0
        if pruned is not None:
            self._pruned_at = now
            self._log_pruned(pruned, retention)

    def add_feedback(self, query_id: str, rating: int, comment: str | None = None) -> int:
        """Record (or replace) the vote on a logged query. Raises UnknownQuery, ValueError on a bad rating,
        and StoreUnavailable when the database cannot be written now (locked, or its server unreachable)."""
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
                if row is None and self._shared:
                    row = self._await_other_replica(query_id)
            if row is None:
                raise UnknownQuery(query_id)
            values = {"ts": _ts(self._clock()), "query_id": query_id, "rating": rating, "comment": comment,
                      **{k: row[k] for k in ("question", "answer", "citations_json", "provenance_json")}}
            with self._writes.begin() as conn:
                return int(conn.execute(self._upsert_feedback(values)).scalar_one())
        except TRANSIENT_ERRORS as err:  # "database is locked" past the busy timeout, a full disk, no server
            # The reason goes to the log only: a driver's message can name internal hosts, and callers are public.
            log.warning("feedback not stored: %s", _reason(err, self._url))
            raise StoreUnavailable("feedback cannot be stored right now (the database is busy or unreachable); "
                                   "try again shortly") from err

    def _upsert_feedback(self, values: Mapping[str, Any]) -> Any:
        dialect_insert: Callable[[Table], Any] = postgresql.insert if self.backend == "postgresql" else sqlite.insert
        stmt = dialect_insert(self._feedback).values(values)
        return stmt.on_conflict_do_update(
            index_elements=[self._feedback.c.query_id],
            set_={c: stmt.excluded[c] for c in ("ts", "rating", "comment")},
        ).returning(self._feedback.c.id)

    def _await_other_replica(self, query_id: str) -> RowMapping | None:
        """On a shared database the query may be in another replica's queue, moments from being written."""
        deadline = time.monotonic() + self._lookup_wait
        while time.monotonic() < deadline:
            time.sleep(0.05)
            row = self._lookup(query_id)
            if row is not None:
                return row
        return None

    def _lookup(self, query_id: str) -> RowMapping | None:
        q = self._queries
        with self._engine.connect() as conn:
            return conn.execute(select(q.c.question, q.c.answer, q.c.citations_json, q.c.provenance_json)
                                .where(q.c.id == query_id)).mappings().first()

    def prune(self, retention_days: int) -> tuple[int, int]:
        """Delete queries and feedback older than ``retention_days``; returns (queries, feedback) deleted."""
        now = self._clock()
        with self._writes.begin() as conn:
            pruned = self._delete_older(conn, now, retention_days)
        self._pruned_at = now
        self._log_pruned(pruned, retention_days)
        return pruned

    def _delete_older(self, conn: Connection, now: datetime, retention_days: int) -> tuple[int, int]:
        cutoff = _ts(now - timedelta(days=retention_days))
        q = conn.execute(delete(self._queries).where(self._queries.c.ts < cutoff)).rowcount
        f = conn.execute(delete(self._feedback).where(self._feedback.c.ts < cutoff)).rowcount
        return q, f

    @staticmethod
    def _log_pruned(pruned: tuple[int, int], retention_days: int | None) -> None:
        if any(pruned):
            log.info("pruned %d queries and %d feedback rows older than %s days", *pruned, retention_days)

    # --- reads --------------------------------------------------------------------------
    def queries(self, limit: int = 100, since: datetime | None = None) -> list[dict[str, Any]]:
        """The newest logged queries first, JSON columns decoded (including those still queued a moment ago)."""
        self._writer.flush(self._lookup_wait)
        return self._select(self._queries, self._seq, limit, since)

    def feedback(self, limit: int = 100, since: datetime | None = None, rating: int | None = None
                 ) -> list[dict[str, Any]]:
        """The newest feedback first, JSON columns decoded; ``rating`` is +1 or -1 (and filters when given)."""
        return self._select(self._feedback, self._feedback.c.id, limit, since, rating)

    def query_log_mark(self) -> tuple[int, int]:
        """(rows, newest row's insertion number) of the query log: it changes whenever a row is written or
        pruned, by this replica or another, so a report built from the log can be reused until it does."""
        self._writer.flush(self._lookup_wait)
        with self._engine.connect() as conn:
            count, newest = conn.execute(
                select(func.count(), func.coalesce(func.max(self._seq), 0)).select_from(self._queries)).one()
        return int(count), int(newest)

    def iter_queries(self, since: datetime | None = None) -> Iterator[dict[str, Any]]:
        """Every logged query, oldest first, as {id, ts, question, abstained, confidence} (for coverage reports)."""
        # Best effort, bounded: with the database locked the report shows what is written so far.
        self._writer.flush(self._lookup_wait)
        q = self._queries
        stmt = select(q.c.id, q.c.ts, q.c.question, q.c.abstained, q.c.confidence)
        if since is not None:
            stmt = stmt.where(q.c.ts >= _ts(since))
        with self._engine.connect() as conn:
            rows = conn.execute(stmt.order_by(q.c.ts, self._seq)).mappings().all()
        for r in rows:
            yield {"id": r["id"], "ts": r["ts"], "question": r["question"], "abstained": bool(r["abstained"]),
                   "confidence": r["confidence"]}

    def _select(self, table: Table, order: ColumnElement[int], limit: int, since: datetime | None,
                rating: int | None = None) -> list[dict[str, Any]]:
        stmt = select(*(c for c in table.c if c.name != "seq"))  # seq is PostgreSQL's rowid: not a field
        if since is not None:
            stmt = stmt.where(table.c.ts >= _ts(since))
        if rating is not None:
            stmt = stmt.where(table.c.rating == int(rating))
        stmt = stmt.order_by(table.c.ts.desc(), order.desc()).limit(int(limit))
        with self._engine.connect() as conn:
            rows = conn.execute(stmt).mappings().all()
        return [_decode(dict(r)) for r in rows]


def _decode(row: dict[str, Any]) -> dict[str, Any]:
    for key in [k for k in row if k.endswith("_json")]:
        row[key.removesuffix("_json")] = json.loads(row.pop(key))
    if "abstained" in row:
        row["abstained"] = bool(row["abstained"])
    return row


def open_store(settings: Settings) -> FeedbackStore | None:
    """The store for ``settings``. A database named in ``STRIDE_DATABASE_URL`` that cannot be opened is a
    DatabaseUnavailable, raised at start: the operator asked for it, and replicas quietly keeping no feedback
    would hide the mistake. The default SQLite file failing (a full or read-only disk) costs only feedback:
    None, logged, and chat keeps working."""
    try:
        return FeedbackStore.for_settings(settings)
    except DatabaseUnavailable as err:
        if not isinstance(database_for(settings), Path):
            raise
        log.error("feedback is not being stored: %s", err)
        return None


def open_existing(settings: Settings) -> FeedbackStore | None:
    """The configured store for reading (exports, reports): without retention, so reading never prunes, and
    None when the default SQLite file does not exist, so reading never creates it. Raises DatabaseUnavailable."""
    database = database_for(settings)
    if isinstance(database, Path) and not database.exists():
        return None
    return FeedbackStore(database)
