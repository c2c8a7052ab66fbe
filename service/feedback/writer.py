"""``QueryLogWriter``: the query log is written off the request path, by one background thread.

A chat answer must never wait for the database: another process holding its write lock (a backup, an
analyst's long transaction) used to stall every /chat for as long as the lock was held, and starve the
server's worker threads so that even /healthz queued behind them; a PostgreSQL server that restarts must not
either. Request threads now only put a row on a
bounded in-memory queue; one daemon thread drains it in batches, one transaction per batch.

While the database is locked the writer keeps the batch in memory and retries with backoff, so nothing is
lost when the lock is released. Memory stays bounded: when the queue is full a new row is dropped (and
counted) rather than blocking the request. Counts are kept here and read by whoever reports them (the
app's /metrics), so this module knows nothing about the HTTP layer.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import sqlite3
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from sqlalchemy import exc

log = logging.getLogger(__name__)

Row = TypeVar("Row")

# Why rows were given up on: the queue was full, the database refused the batch for good (not a lock or
# other transient OperationalError), or the server stopped while the database was still unwritable.
DROP_REASONS = ("queue_full", "write_error", "shutdown")

# Errors that pass: a locked SQLite file, a full disk, a lock timeout or a lost connection to PostgreSQL (all
# OperationalError, raw from sqlite3 or wrapped by SQLAlchemy), every pooled connection busy. Not transient:
# a constraint or a programming error, which no retry can fix.
TRANSIENT_ERRORS: tuple[type[Exception], ...] = (
    sqlite3.OperationalError, exc.OperationalError, exc.InterfaceError, exc.TimeoutError,
)


@dataclass(frozen=True)
class QueryLogStats:
    pending: int  # enqueued but not yet written (queued plus the batch being written)
    dropped: Mapping[str, int]  # rows that will never be written, by reason (DROP_REASONS)
    retries: int  # failed batch attempts that were retried (the database was locked or unwritable)


class _Stop:
    """Wakes the writer thread when it is blocked on an empty queue (see ``close``)."""


class QueryLogWriter(Generic[Row]):
    """A bounded queue drained by one thread that hands batches to ``write_batch``.

    ``write_batch`` must write all rows of a batch or none (one transaction). One of ``TRANSIENT_ERRORS``
    ("database is locked", a full disk, the server gone) is taken as transient: the same batch is retried,
    backing off from ``retry_initial`` to ``retry_max`` seconds, until it succeeds or the writer is closed.
    Any other error means the batch can never be written (a constraint, a bug): it is logged and its rows
    counted as dropped, so one bad batch cannot wedge the log.
    """

    def __init__(
        self,
        write_batch: Callable[[Sequence[Row]], None],
        *,
        max_pending: int = 10_000,
        max_batch: int = 500,
        retry_initial: float = 0.05,
        retry_max: float = 1.0,
        name: str = "stride-query-log",
    ) -> None:
        if max_pending < 1 or max_batch < 1:
            raise ValueError("max_pending and max_batch must be at least 1")
        self._write_batch = write_batch
        self._max_batch = max_batch
        self._retry_initial = retry_initial
        self._retry_max = retry_max
        self._queue: queue.Queue[Row | _Stop] = queue.Queue(maxsize=max_pending)
        # Guards the counters. ``submit`` also holds it around the put, so queue order equals the order of
        # ``_enqueued``: "everything enqueued so far" is then simply the first N rows (see ``flush``).
        self._lock = threading.Lock()
        self._progress = threading.Condition(self._lock)
        self._enqueued = 0
        self._finished = 0  # rows written or dropped after being queued; only ever grows
        self._dropped = dict.fromkeys(DROP_REASONS, 0)
        self._retries = 0
        self._stop = threading.Event()
        # Cuts a retry backoff short: set on close, and by flush, since someone waiting for the rows (a vote on
        # a query still queued) should not sit out a backoff that began while the lock was held.
        self._wake = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    # --- the request side -----------------------------------------------------------------------
    def submit(self, row: Row) -> bool:
        """Queue one row without ever blocking; False when it was dropped (queue full or writer closed)."""
        with self._lock:
            if not self._stop.is_set():
                try:
                    self._queue.put_nowait(row)
                except queue.Full:
                    pass
                else:
                    self._enqueued += 1
                    return True
            self._dropped["queue_full" if not self._stop.is_set() else "shutdown"] += 1
            dropped = sum(self._dropped.values())
        # Logged on powers of two: a stall that drops thousands of rows writes a dozen lines, not thousands.
        if dropped & (dropped - 1) == 0:
            log.warning("query log: dropped a row (%d in all): the queue is full (the database has been"
                        " unwritable too long) or the writer is closed", dropped)
        return False

    # --- observing and waiting ------------------------------------------------------------------
    @property
    def pending(self) -> int:
        with self._lock:
            return self._enqueued - self._finished

    @property
    def dropped(self) -> int:
        with self._lock:
            return sum(self._dropped.values())

    def stats(self) -> QueryLogStats:
        with self._lock:
            return QueryLogStats(self._enqueued - self._finished, dict(self._dropped), self._retries)

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every row submitted before this call is written (or given up on); False on timeout."""
        with self._progress:
            target = self._enqueued
            if self._finished >= target:
                return True
            self._wake.set()
            return self._progress.wait_for(lambda: self._finished >= target, timeout)

    def close(self, timeout: float = 5.0) -> bool:
        """Flush for up to ``timeout`` seconds, then stop the thread. Rows still unwritten (the database stayed
        locked) are counted as dropped and logged. Returns whether everything was written. Idempotent."""
        flushed = self.flush(timeout)
        with self._lock:
            self._stop.set()  # under the lock: no submit can slip in after the final count below
        self._wake.set()
        # The marker only matters when the thread waits on an empty queue; when the queue is full the thread
        # is busy, not blocked, and sees the stop flag before taking the next batch.
        with contextlib.suppress(queue.Full):
            self._queue.put_nowait(_Stop())
        self._thread.join(timeout=max(1.0, self._retry_max * 2))
        if self._thread.is_alive():
            log.error("query log writer did not stop; %d rows may be lost", self.pending)
            return False
        lost = self._drain_abandoned()
        if lost:
            log.error("query log: %d rows were never written (the database stayed unwritable)", lost)
        return flushed and not lost

    # --- the writer thread ----------------------------------------------------------------------
    def _run(self) -> None:
        while not self._stop.is_set():
            first = self._queue.get()
            if isinstance(first, _Stop):
                break
            batch = [first]
            stop_after = False
            while len(batch) < self._max_batch:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if isinstance(item, _Stop):
                    stop_after = True
                    break
                batch.append(item)
            self._write(batch)
            if stop_after:
                break

    def _write(self, batch: list[Row]) -> None:
        delay = self._retry_initial
        attempts = 0
        while True:
            try:
                self._write_batch(batch)
            except TRANSIENT_ERRORS as err:
                attempts += 1
                with self._lock:
                    self._retries += 1
                if attempts & (attempts - 1) == 0:  # 1, 2, 4, 8...: visible in the log without flooding it
                    log.warning("query log: writing %d rows failed (%s); retry %d in %.2f s",
                                len(batch), err, attempts, delay)
                # Keep the rows and wait, unless the server is stopping: close() has already waited its turn.
                self._wake.wait(delay)
                self._wake.clear()
                if self._stop.is_set():
                    self._finish(len(batch), dropped_as="shutdown")
                    return
                delay = min(delay * 2, self._retry_max)
            except Exception:
                log.exception("query log: %d rows cannot be written; dropping them", len(batch))
                self._finish(len(batch), dropped_as="write_error")
                return
            else:
                if attempts:
                    log.info("query log: wrote %d rows after %d retries", len(batch), attempts)
                self._finish(len(batch))
                return

    def _finish(self, n: int, dropped_as: str | None = None) -> None:
        with self._progress:
            self._finished += n
            if dropped_as is not None:
                self._dropped[dropped_as] += n
            self._progress.notify_all()

    def _drain_abandoned(self) -> int:
        """After the thread stopped: count what is still queued as dropped, and release any flush waiters."""
        lost = 0
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if not isinstance(item, _Stop):
                lost += 1
        if lost:
            self._finish(lost, dropped_as="shutdown")
        return lost

