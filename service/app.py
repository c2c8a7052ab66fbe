"""``create_app(settings)``: the FastAPI app factory. Heavy objects live on ``app.state``, built in
the lifespan (in a background thread, so /healthz answers while the model loads)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from prometheus_client import CollectorRegistry, Counter, Histogram
from starlette.exceptions import HTTPException as StarletteHTTPException

from ingest.errors import StrideError
from ingest.settings import Settings
from service.engine import Engine
from service.feedback import FeedbackStore, open_store

log = logging.getLogger(__name__)
MAX_BODY_BYTES = 256 * 1024


@dataclass
class Metrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        self.requests = Counter("stride_requests", "HTTP requests", ["route", "method", "status"], registry=self.registry)
        self.latency = Histogram(
            "stride_request_seconds", "HTTP request latency", ["route"], registry=self.registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
        )
        self.answers = Counter("stride_answers", "Chat answers by outcome", ["outcome"], registry=self.registry)


@dataclass
class AppState:
    settings: Settings
    metrics: Metrics
    engine: Engine | None = None
    error: str | None = None
    feedback: FeedbackStore | None = None
    started: float = field(default_factory=time.monotonic)
    startup_seconds: float | None = None


def _validation_message(err: RequestValidationError) -> str:
    parts = []
    for e in err.errors():
        if e.get("type") == "json_invalid":
            return "request body is not valid JSON"
        loc = ".".join(str(x) for x in e.get("loc", ()) if x != "body")
        parts.append(f"{loc}: {e.get('msg')}" if loc else str(e.get("msg")))
    return "; ".join(parts) or "invalid request"


def create_app(settings: Settings, engine_factory: Callable[[Settings], Engine] = Engine.load) -> FastAPI:
    state = AppState(settings=settings, metrics=Metrics(), feedback=open_store(settings))

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
        description="Cited answers about running muscles and strength training for runners, from a fixed set of articles.",
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
    async def observe(request: Request, call_next):  # type: ignore[no-untyped-def]
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

    @app.exception_handler(RequestValidationError)
    async def on_validation(_: Request, err: RequestValidationError) -> JSONResponse:
        return JSONResponse(status_code=422, content={"detail": _validation_message(err)})

    @app.exception_handler(StarletteHTTPException)
    async def on_http(_: Request, err: StarletteHTTPException) -> JSONResponse:
        return JSONResponse(status_code=err.status_code, content={"detail": err.detail}, headers=err.headers)

    @app.exception_handler(StrideError)
    async def on_stride(_: Request, err: StrideError) -> JSONResponse:
        return JSONResponse(status_code=503, content={"detail": str(err)})

    from service.api import articles, chat, coverage, feedback, health, search

    for module in (health, search, chat, articles, feedback, coverage):
        app.include_router(module.router)
    return app
