"""``create_app(settings)``: the FastAPI app factory. Heavy objects live on ``app.state``, built in
the lifespan (in a background thread, so /healthz answers while the model loads)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request, Response
from fastapi.middleware.cors import CORSMiddleware

from ingest.errors import StrideError
from ingest.settings import Settings
from service.answering.engine import Engine
from service.api import errors
from service.api.metrics import Metrics
from service.api.state import AppState
from service.coverage.build import EvalQuestion
from service.feedback.store import FeedbackStore, open_store

log = logging.getLogger(__name__)
MAX_BODY_BYTES = 256 * 1024


def create_app(
    settings: Settings,
    *,
    engine_factory: Callable[[Settings], Engine] = Engine.load,
    feedback_factory: Callable[[Settings], FeedbackStore | None] = open_store,
    eval_questions: Sequence[EvalQuestion] = (),
) -> FastAPI:
    """The app over ``settings``. The factories are the seams for tests (a deterministic embedder, a
    broken store); ``eval_questions`` lets the coverage page list which questions each article answers."""
    state = AppState(settings=settings, metrics=Metrics(), feedback=feedback_factory(settings),
                     eval_questions=eval_questions)

    def load() -> None:
        try:
            state.engine = engine_factory(settings)
            state.startup_seconds = round(time.monotonic() - state.started, 3)
            log.info("Stride ready in %.1f s (index %s)", state.startup_seconds, state.engine.snapshot.version)
        except StrideError as err:
            state.error = errors.public_message(str(err), settings.data_dir)  # shown by /readyz and 503s
            log.error("Stride cannot start: %s", err)
        except Exception as err:  # keep the process up so /readyz can say what went wrong
            state.error = f"{type(err).__name__}: {err}"
            log.exception("Stride failed to load")

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if state.feedback is not None:
            state.metrics.watch_query_log(state.feedback.query_log_stats)
        threading.Thread(target=load, name="stride-load", daemon=True).start()
        yield
        if state.feedback is not None:
            # Writes the queued query log first; bounded (5 s) so a stuck lock cannot hang shutdown, and
            # whatever is abandoned is counted and logged. Requests are over by now: blocking the loop is fine.
            state.feedback.close()

    app = FastAPI(
        title="Stride",
        description=(
            "Cited answers about running muscles and strength training for runners, from a fixed set of articles."
        ),
        version="0.1.0",
        lifespan=lifespan,
        # Counted on the bytes actually received, so a chunked body without Content-Length is cut off
        # at the limit too (Starlette's RequestBodyLimitMiddleware), not read whole into memory.
        max_body_size=MAX_BODY_BYTES,
    )
    app.state.stride = state
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware, allow_origins=settings.cors_origins, allow_methods=["GET", "POST"],
            allow_headers=["Content-Type"], max_age=600,
            # Cross-origin callers read the query id to attach feedback to a /chat answer.
            expose_headers=["X-Stride-Query-Id"],
        )

    @app.middleware("http")
    async def observe(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        started = time.perf_counter()
        response = await call_next(request)
        route = request.scope.get("route")
        path = getattr(route, "path", "unmatched")
        state.metrics.requests.labels(path, request.method, str(response.status_code)).inc()
        state.metrics.latency.labels(path).observe(time.perf_counter() - started)
        return response

    errors.install(app, settings.data_dir)

    from service.api.routes import articles, chat, coverage, feedback, health, search, ui

    for module in (health, search, chat, articles, feedback, coverage, ui):
        app.include_router(module.router)
    return app
