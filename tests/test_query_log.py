"""The query log is written off the request path (issue 12, defect 3): a stuck write lock held by another
process must not stall /chat or /healthz, must not lose query-log rows, and turns /feedback into a 503 JSON
answer with Retry-After. The lock is held by a real second process (SQLite) or session (PostgreSQL), as in
production."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from service.feedback.store import FILENAME, FeedbackStore, StoreUnavailable
from service.feedback.writer import QueryLogWriter

RESULT = {"answer": "Quads, hamstrings, glutes and calves. [1]", "abstained": False, "citations": [],
          "provenance": {"confidence": 0.7}}
FAST = 2.0  # seconds: generous for CI; a request that waited for the lock would take as long as the lock

# A second process that takes the database's write lock and holds it until its stdin is closed (or a
# safety limit passes, so a crashed test never leaves it behind).
_HOLDER = """
import select, sqlite3, sys
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("BEGIN IMMEDIATE")
print("locked", flush=True)
select.select([sys.stdin], [], [], float(sys.argv[2]))
db.execute("ROLLBACK")
"""


@contextmanager
def write_lock_held(database: Path | str, limit: float = 60) -> Iterator[None]:
    if isinstance(database, str):
        from tests.postgres_support import write_lock_held as postgres_lock

        with postgres_lock(database):
            yield
        return
    path = database
    proc = subprocess.Popen([sys.executable, "-c", _HOLDER, str(path), str(limit)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "locked", proc.stderr
        yield
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        proc.wait(timeout=10)


def logged_ids(database: Path | str) -> set[str]:
    """Read the database itself, from outside the store (as an analyst would)."""
    if isinstance(database, str):
        import psycopg
        from sqlalchemy.engine import make_url

        conninfo = make_url(database).set(drivername="postgresql").render_as_string(hide_password=False)
        with psycopg.connect(conninfo) as conn:
            return {r[0] for r in conn.execute("SELECT id FROM queries")}
    with sqlite3.connect(database) as db:
        return {r[0] for r in db.execute("SELECT id FROM queries")}


def eventually(predicate: Any, timeout: float = 5) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline
        time.sleep(0.005)


def timed(fn: Any, *args: Any, **kwargs: Any) -> tuple[Any, float]:
    started = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - started


@contextmanager
def app_client(settings: Any, store_factory: Any) -> Iterator[Any]:
    from fastapi.testclient import TestClient

    from service.api.app import create_app
    from tests.conftest import wait_ready
    from tests.fakes import build_fake_engine

    with TestClient(create_app(settings, engine_factory=build_fake_engine, feedback_factory=store_factory)) as c:
        wait_ready(c)
        yield c


# --- through the API, with a real second process holding the lock ---------------------------------------

@pytest.fixture
def unthrottled(fake_settings: Any) -> Iterator[Any]:
    """A client whose burst is neither rate-limited nor shed: the lock is what is under test."""
    from service.feedback.store import open_store

    with app_client(fake_settings.model_copy(update={"rate_limit_chat": "", "max_in_flight": 64}), open_store) as c:
        yield c


def test_a_held_write_lock_stalls_neither_chat_nor_healthz_and_loses_no_rows(unthrottled) -> None:
    client = unthrottled
    store = client.app.state.stride.feedback
    path = store.path
    questions = [f"What do the glutes do when running, part {i}?" for i in range(20)]
    with write_lock_held(path), ThreadPoolExecutor(max_workers=21) as pool:
        chats = [pool.submit(timed, client.post, "/chat", json={"message": q}) for q in questions]
        health = pool.submit(timed, client.get, "/healthz")
        results = [f.result() for f in chats]
        (h, h_seconds) = health.result()
        assert h.status_code == 200 and h_seconds < FAST
        for r, seconds in results:
            assert r.status_code == 200 and r.json()["answer"] and seconds < FAST
        ids = {r.headers["x-stride-query-id"] for r, _ in results}
        assert len(ids) == 20
        # The rows really did wait for the lock: queued in memory, not in the file, the writer retrying.
        assert not ids & logged_ids(path)
        eventually(lambda: store.query_log_stats().retries > 0)
        stats = store.query_log_stats()
        assert stats.pending == 20 and sum(stats.dropped.values()) == 0
        metrics = client.get("/metrics").text
        assert "stride_query_log_pending 20.0" in metrics
    assert store.flush(timeout=10)
    assert ids <= logged_ids(path)
    assert store.query_log_stats().pending == 0 and sum(store.query_log_stats().dropped.values()) == 0


def test_feedback_while_the_lock_is_held_is_a_503_json_with_retry_after(fake_settings) -> None:
    def short_waits(settings: Any) -> FeedbackStore:
        return FeedbackStore(settings.data_dir / FILENAME, busy_timeout=0.3, lookup_wait=0.3)

    with app_client(fake_settings, short_waits) as client:
        store = client.app.state.stride.feedback
        written = client.post("/chat", json={"message": "What do calves do?"}).headers["x-stride-query-id"]
        assert store.flush(timeout=5)
        with write_lock_held(store.path):
            queued = client.post("/chat", json={"message": "What do quads do?"}).headers["x-stride-query-id"]
            for qid in (written, queued):  # in the file already; still queued behind the lock
                r, seconds = timed(client.post, "/feedback", json={"query_id": qid, "rating": "up"})
                assert r.status_code == 503 and r.headers["content-type"] == "application/json"
                assert r.headers["retry-after"] == "5" and "try again" in r.json()["detail"]
                assert seconds < FAST
        # Once the lock is released both votes go through, including the one on the queued query.
        for qid in (written, queued):
            assert client.post("/feedback", json={"query_id": qid, "rating": "down"}).status_code == 200
        assert {f["query_id"] for f in store.feedback()} == {written, queued}


def test_a_full_queue_drops_new_rows_counts_them_and_metrics_show_it(fake_settings) -> None:
    def tiny_queue(settings: Any) -> FeedbackStore:
        return FeedbackStore(settings.data_dir / FILENAME, queue_size=3)

    with app_client(fake_settings, tiny_queue) as client:
        store = client.app.state.stride.feedback
        with write_lock_held(store.path):
            responses = [client.post("/chat", json={"message": "What do calves do, take 0?"})]
            eventually(lambda: store.query_log_stats().retries > 0)  # the writer holds row 0, retrying it
            responses += [client.post("/chat", json={"message": f"What do calves do, take {i}?"}) for i in range(1, 10)]
            assert all(r.status_code == 200 and r.json()["answer"] for r in responses)
            kept = [r.headers["x-stride-query-id"] for r in responses if "x-stride-query-id" in r.headers]
            # Row 0 in the writer's hands, 3 in the queue, the other 6 dropped: a dropped row gets no query id,
            # so nobody is offered feedback on a query that will never be found.
            assert len(kept) == 4 and [r.headers.get("x-stride-query-id") for r in responses[4:]] == [None] * 6
            assert store.query_log_stats().dropped["queue_full"] == 6
            assert 'stride_query_log_dropped_total{reason="queue_full"} 6.0' in client.get("/metrics").text
        assert store.flush(timeout=10)
        assert logged_ids(store.path) == set(kept)


def test_metrics_expose_the_query_log_series_from_the_start(client) -> None:
    text = client.get("/metrics").text
    for reason in ("queue_full", "write_error", "shutdown"):
        assert f'stride_query_log_dropped_total{{reason="{reason}"}} 0.0' in text
    assert "stride_query_log_pending 0.0" in text and "stride_query_log_retries_total 0.0" in text


# --- the store ---------------------------------------------------------------------------------------------

def test_close_writes_what_is_queued(database: Path | str) -> None:
    store = FeedbackStore(database)
    ids = [store.log_query(f"q{i}", [], RESULT) for i in range(50)]
    assert store.close()
    assert logged_ids(database) == set(ids)


def test_a_held_lock_queues_the_log_and_feedback_gives_up_in_time(database: Path | str) -> None:
    store = FeedbackStore(database, busy_timeout=0.3, lookup_wait=0.3)
    written = store.log_query("What do calves do?", [], RESULT)
    assert store.flush(timeout=5)
    with write_lock_held(database):
        queued, seconds = timed(store.log_query, "What do quads do?", [], RESULT)
        assert queued and seconds < 0.1
        eventually(lambda: store.query_log_stats().retries > 0)  # the writer keeps the row and retries
        for qid in (written, queued):  # in the database already; still queued behind the lock
            started = time.perf_counter()
            with pytest.raises(StoreUnavailable, match="try again"):
                store.add_feedback(qid, 1)
            assert time.perf_counter() - started < FAST
        assert logged_ids(database) == {written}
    assert store.flush(timeout=10) and logged_ids(database) == {written, queued}
    for qid in (written, queued):
        store.add_feedback(qid, -1)
    assert {f["query_id"] for f in store.feedback()} == {written, queued}
    assert store.close()


def test_close_gives_up_on_a_lock_that_outlasts_it_and_counts_the_loss(database: Path | str) -> None:
    store = FeedbackStore(database)
    with write_lock_held(database):
        store.log_query("q", [], RESULT)
        started = time.perf_counter()
        assert store.close(timeout=0.3) is False
        assert time.perf_counter() - started < FAST
    assert store.query_log_stats().dropped["shutdown"] == 1 and store.query_log_stats().pending == 0
    assert logged_ids(database) == set()


# --- the writer, with hand-written sinks -------------------------------------------------------------------

class RecordingSink:
    """Writes batches to a list; raises "database is locked" while ``locked`` is set, like SQLite."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.locked = threading.Event()
        self.attempts = 0

    def __call__(self, rows: Sequence[int]) -> None:
        self.attempts += 1
        if self.locked.is_set():
            raise sqlite3.OperationalError("database is locked")
        self.batches.append(list(rows))

    @property
    def rows(self) -> list[int]:
        return [r for b in self.batches for r in b]


class PoisonSink(RecordingSink):
    """A batch containing a negative row can never be written (like a constraint violation)."""

    def __call__(self, rows: Sequence[int]) -> None:
        if any(r < 0 for r in rows):
            raise sqlite3.IntegrityError("UNIQUE constraint failed: queries.id")
        super().__call__(rows)


def test_writer_writes_everything_in_order_in_bounded_batches() -> None:
    sink = RecordingSink()
    writer = QueryLogWriter(sink, max_batch=64)
    for i in range(1000):
        assert writer.submit(i)
    assert writer.flush(timeout=5) and writer.pending == 0
    assert sink.rows == list(range(1000)) and max(len(b) for b in sink.batches) <= 64
    assert writer.close()


def test_writer_keeps_rows_while_locked_and_writes_them_once_released() -> None:
    sink = RecordingSink()
    sink.locked.set()
    writer = QueryLogWriter(sink, retry_initial=0.01, retry_max=0.05)
    for i in range(100):
        writer.submit(i)
    assert writer.flush(timeout=0.3) is False  # bounded: flush never waits out a lock
    assert writer.pending == 100 and sink.rows == [] and writer.stats().retries >= 2
    sink.locked.clear()
    assert writer.flush(timeout=5)
    assert sink.rows == list(range(100)) and writer.dropped == 0
    writer.close()


def test_writer_drops_when_full_and_counts_it() -> None:
    sink = RecordingSink()
    sink.locked.set()
    writer = QueryLogWriter(sink, max_pending=5, max_batch=1, retry_initial=0.01, retry_max=0.02)
    assert writer.submit(0)
    eventually(lambda: sink.attempts > 0)  # the writer has taken row 0 into its batch and is retrying it
    accepted = [writer.submit(i) for i in range(1, 11)]
    assert accepted == [True] * 5 + [False] * 5
    assert writer.stats().dropped["queue_full"] == 5 and writer.pending == 6
    sink.locked.clear()
    assert writer.flush(timeout=5) and sink.rows == list(range(6))
    writer.close()


def test_a_batch_that_can_never_be_written_is_dropped_and_the_writer_goes_on() -> None:
    sink = PoisonSink()
    writer = QueryLogWriter(sink, max_batch=1)
    for row in (1, -1, 2):
        writer.submit(row)
    assert writer.flush(timeout=5)
    assert sink.rows == [1, 2] and writer.stats().dropped["write_error"] == 1
    writer.close()


def test_close_stops_the_thread_and_later_rows_are_refused() -> None:
    writer = QueryLogWriter(RecordingSink())
    assert writer.close(timeout=1) and writer.close(timeout=1)  # idempotent
    assert writer.submit(1) is False and writer.stats().dropped["shutdown"] == 1
    assert writer.flush(timeout=0.1)


@pytest.mark.parametrize(("max_pending", "max_batch"), [(0, 1), (1, 0)])
def test_writer_sizes_must_be_positive(max_pending: int, max_batch: int) -> None:
    with pytest.raises(ValueError, match="at least 1"):
        QueryLogWriter(RecordingSink(), max_pending=max_pending, max_batch=max_batch)
