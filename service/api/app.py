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
from fastapi.responses import JSONResponse

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
            state.error = str(err)
            log.error("Stride cannot start: %s", err)
        except Exception as err:  # keep the process up so /readyz can say what went wrong
            state.error = f"{type(err).__name__}: {err}"
            log.exception("Stride failed to load")

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        threading.Thread(target=load, name="stride-load", daemon=True).start()
        yield
        if state.feedback is not None:
            state.feedback.close()

    app = FastAPI(
        title="Stride",
        description=(
            "Cited answers about running muscles and strength training for runners, from a fixed set of articles."
        ),
        version="0.1.0",
        lifespan=lifespan,
    )
    app.state.stride = state
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware, allow_origins=settings.cors_origins, allow_methods=["GET", "POST"],
            allow_headers=["Content-Type"], max_age=600,
        )

    @app.middleware("http")
    async def observe(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        length = request.headers.get("content-length")
        if length and length.isdigit() and int(length) > MAX_BODY_BYTES:
            return JSONResponse(status_code=413, content={"detail": f"request body over {MAX_BODY_BYTES} bytes"})
        started = time.perf_counter()
        response = await call_next(request)
        route = request.scope.get("route")
        path = getattr(route, "path", "unmatched")
        state.metrics.requests.labels(path, request.method, str(response.status_code)).inc()
        state.metrics.latency.labels(path).observe(time.perf_counter() - started)
        return response

    errors.install(app)

    from service.api.routes import articles, chat, coverage, feedback, health, search, ui

    for module in (health, search, chat, articles, feedback, coverage, ui):
        app.include_router(module.router)
    return app
