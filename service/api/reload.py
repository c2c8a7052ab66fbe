"""Zero-downtime index updates: ``IndexWatcher`` follows the published version and swaps engines.

The swap is one assignment to ``AppState.engine``: a request takes the engine once, at its start, and
finishes on it; requests that start later see the new one. The old engine's index keeps its lease on
its version until the last request holding it is done (or, should a reference leak, until the grace
period ends), then releases its files so the next ingest can delete the version.
"""

from __future__ import annotations

import gc
import logging
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from ingest.errors import StrideError
from ingest.index_source import index_source
from service.answering.engine import Engine
from service.api.state import AppState

log = logging.getLogger(__name__)

RETRY_FAILED_S = 30.0  # a version that failed to load is tried again this often (or on POST /admin/reload)


@dataclass(frozen=True)
class ReloadOutcome:
    status: Literal["reloaded", "unchanged", "failed"]
    index_version: str | None  # served after the check
    previous: str | None = None  # served before it, when reloaded
    detail: str | None = None  # why the new version failed to load


@dataclass
class _Retired:
    index: weakref.ref[object]
    close: Callable[[], None]
    since: float


class IndexWatcher:
    """Polls the ``current`` pointer every ``poll_s`` seconds (0: only when asked) and loads what it
    points at. A version that fails to load leaves the old one serving, with the reason on /readyz."""

    def __init__(
        self,
        state: AppState,
        *,
        first_load: Callable[[], None],
        on_swap: Callable[[Engine], None],
        poll_s: float,
        grace_s: float,
    ) -> None:
        self._state = state
        self._source = index_source(state.settings)
        self._first_load = first_load
        self._on_swap = on_swap
        self._poll_s = poll_s
        self._grace_s = grace_s
        self._lock = threading.Lock()  # one load at a time: the poller and POST /admin/reload
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._failed: tuple[str, float] | None = None  # (version id, when)
        self._retired: list[_Retired] = []
        self._last_gc = 0.0
        self._loaded: Engine | None = None  # the last engine this watcher made (it owns it)

    def start(self) -> None:
        with self._lock:  # never after stop(): the app may shut down while its first load is finishing
            if self._poll_s > 0 and self._thread is None and not self._stop.is_set():
                self._thread = threading.Thread(target=self._run, name="stride-index-watch", daemon=True)
                self._thread.start()

    def stop(self) -> None:
        """Stop polling, and close the engine this watcher loaded, if it is still the one served (an engine
        the app was given belongs to whoever gave it), and every version it retired: a retired version still
        referenced would otherwise go on renewing its lease after the app is gone."""
        self._stop.set()
        with self._lock:
            thread = self._thread
            if self._loaded is not None and self._state.engine is self._loaded:
                self._loaded.close()
            for r in self._retired:
                r.close()
            self._retired.clear()
        if thread is not None:
            thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.wait(self._poll_s):
            try:
                self.check()
            except Exception:  # the watcher must outlive any one bad check
                log.exception("index watch failed")

    def check(self, force: bool = False) -> ReloadOutcome:
        """Load the published version if it is not the one served. ``force`` retries a version that failed."""
        with self._lock:
            self._reap()
            state = self._state
            try:
                target = self._source.current_id()
            except StrideError as err:  # the store is away: keep serving what is loaded; /readyz says so
                log.debug("cannot read the published version: %s", err)
                return ReloadOutcome("unchanged", state.engine.snapshot.version if state.engine else None)
            engine = state.engine
            if engine is None:
                return self._load_first(target, force)
            served = engine.snapshot.version
            if target is None or target == engine.version_id:
                return ReloadOutcome("unchanged", served)
            if not force and self._failed is not None and self._failed[0] == target \
                    and time.monotonic() - self._failed[1] < RETRY_FAILED_S:
                return ReloadOutcome("failed", served, detail=state.reload_error)
            started = time.monotonic()
            try:
                new = engine.reopen(state.settings)
            except Exception as err:
                detail = str(err) if isinstance(err, StrideError) else f"{type(err).__name__}: {err}"
                self._failed = (target, time.monotonic())
                state.reload_error, state.failed_version = detail, target
                state.metrics.reload("failed")
                log.error("index version %s could not be loaded; still serving %s: %s", target, served, detail)
                return ReloadOutcome("failed", served, detail=detail)
            state.engine = self._loaded = new  # requests already holding the old engine finish on it
            state.reload_error = state.failed_version = None
            self._failed = None
            self._retire(engine)
            state.metrics.reload("reloaded")
            log.info("now serving index %s (was %s), loaded in %.2f s", new.snapshot.version, served,
                     time.monotonic() - started)
            self._on_swap(new)
            return ReloadOutcome("reloaded", new.snapshot.version, previous=served)

    def _load_first(self, target: str | None, force: bool) -> ReloadOutcome:
        # Nothing was served yet (no index at start, or it could not load): a newly published version
        # gets the same full load as at start.
        if target is None or (not force and self._failed is not None and self._failed[0] == target):
            return ReloadOutcome("unchanged" if target is None else "failed", None, detail=self._state.error)
        self._first_load()
        if self._state.engine is None:
            self._failed = (target, time.monotonic())
            return ReloadOutcome("failed", None, detail=self._state.error)
        self._failed = None
        self._on_swap(self._state.engine)
        return ReloadOutcome("reloaded", self._state.engine.snapshot.version)

    def _retire(self, engine: Engine) -> None:
        index = engine.search_index
        # The index's own finalizer, not its bound close(): that would keep the index alive.
        self._retired.append(_Retired(weakref.ref(index), index.releaser, time.monotonic()))

    def _reap(self) -> None:
        """Let go of retired versions: those no request holds any more are already closed (their
        finalizer ran); past the grace period, close the rest. Then delete them if no ingest runs."""
        if not self._retired:
            return
        now = time.monotonic()
        if now - self._last_gc > 10.0 and any(r.index() is not None for r in self._retired):
            self._last_gc = now
            gc.collect()  # a reference cycle must not keep a version's files open
        released = False
        for r in list(self._retired):
            index = r.index()
            if index is None or now - r.since > self._grace_s:
                if index is not None:
                    log.warning("closing a retired index still referenced after %.0f s", self._grace_s)
                r.close()
                self._retired.remove(r)
                released = True
        if released:
            self._collect_garbage()

    def _collect_garbage(self) -> None:
        self._source.collect_garbage_if_idle()
