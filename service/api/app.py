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
from fastapi_offline import FastAPIOffline

from ingest.errors import StrideError
from ingest.settings import Settings
from service.answering.engine import Engine
from service.api import errors
from service.api.auth import BearerGuard
from service.api.body_limit import BodyLimit
from service.api.metrics import Metrics
from service.api.reload import IndexWatcher
from service.api.routes.ui import DOCS_ASSETS
from service.api.state import AppState
from service.api.throttle import LoadShedder, RateLimits
from service.coverage.build import EvalQuestion
from service.coverage.live import LiveCoverage
from service.feedback.store import FeedbackStore, open_store

log = logging.getLogger(__name__)
MAX_BODY_BYTES = 256 * 1024
# The routes that compute an answer; health, metrics, articles and the page are never shed.
ANSWER_PATHS = ("/chat", "/chat/stream", "/search", "/v1/chat/completions", "/mcp")


# The docs' own routes and assets, which FastAPI serves outside its routing (no scope "route").
_DOCS_PATHS = frozenset({"/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"})


def route_label(request: Request) -> str:
    """The metrics label of a request: its route's path template (never the raw path, which would let
    callers create unbounded series), the docs' own paths, or "unmatched"."""
    route = request.scope.get("route")
    if route is not None:
        return str(getattr(route, "path", "unmatched"))
    path = request.url.path
    if path in _DOCS_PATHS:
        return path
    return DOCS_ASSETS if path.startswith(DOCS_ASSETS + "/") else "unmatched"


def create_app(
    settings: Settings,
    *,
    engine_factory: Callable[[Settings], Engine] = Engine.load,
    feedback_factory: Callable[[Settings], FeedbackStore | None] = open_store,
    eval_questions: Sequence[EvalQuestion] = (),
) -> FastAPI:
    """The app over ``settings``. The factories are the seams for tests (a deterministic embedder, a
    broken store); ``eval_questions`` lets the coverage page list which questions each article answers."""
    metrics = Metrics()
    rate_limits = RateLimits(
        {"chat": settings.rate_limit_chat, "search": settings.rate_limit_search,
         "feedback": settings.rate_limit_feedback},
        on_reject=metrics.reject,
    )
    state = AppState(settings=settings, metrics=metrics, feedback=feedback_factory(settings),
                     rate_limits=rate_limits, coverage=LiveCoverage(eval_questions))

    def load() -> None:
        try:
            state.engine = engine_factory(settings)
            state.error = None
            state.startup_seconds = round(time.monotonic() - state.started, 3)
            log.info("Stride ready in %.1f s (index %s)", state.startup_seconds, state.engine.snapshot.version)
            metrics.serving(state.engine.snapshot.version, state.engine.snapshot.model)
        except StrideError as err:
            state.error = errors.public_message(str(err), settings.data_dir)  # shown by /readyz and 503s
            log.error("Stride cannot start: %s", err)
        except Exception as err:  # keep the process up so /readyz can say what went wrong
            state.error = f"{type(err).__name__}: {err}"
            log.exception("Stride failed to load")

    def warm_coverage() -> None:
        # Built once ready, so the first admin view is a cached page rather than a wait of seconds (at
        # 10k logged questions, embedding the gap questions is most of it). A failure here costs nothing
        # but the head start: the page is built again when viewed.
        if state.engine is None or not settings.admin_api_key:
            return
        try:
            state.coverage.html(state.engine, state.feedback, settings.data_dir)
        except Exception:
            log.exception("could not prepare the coverage page")

    def swapped(engine: Engine) -> None:
        metrics.serving(engine.snapshot.version, engine.snapshot.model)
        warm_coverage()

    watcher = IndexWatcher(state, first_load=load, on_swap=swapped, poll_s=settings.reload_poll_s,
                           grace_s=settings.reload_grace_s)
    state.reload = watcher.check

    def load_then_warm() -> None:
        load()
        warm_coverage()
        watcher.start()  # after the first load, so the two never race

    from service.mcp.server import EndpointRoute, EngineUnavailable, build_mcp_server, streamable_http_endpoint

    def mcp_engine() -> Engine | None:  # None while loading: the MCP tools then say "Stride is starting"
        if state.engine is None and state.error:
            raise EngineUnavailable(f"Stride is not ready: {state.error}")
        return state.engine

    mcp_server = build_mcp_server(mcp_engine)
    mcp_endpoint = streamable_http_endpoint(mcp_server)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if state.feedback is not None:
            state.metrics.watch_query_log(state.feedback.query_log_stats)
        threading.Thread(target=load_then_warm, name="stride-load", daemon=True).start()
        async with mcp_server.session_manager.run():  # serves /mcp (service/mcp) while the app runs
            yield
        watcher.stop()
        if state.feedback is not None:
            # Writes the queued query log first; bounded (5 s) so a stuck lock cannot hang shutdown, and
            # whatever is abandoned is counted and logged. Requests are over by now: blocking the loop is fine.
            state.feedback.close()

    # FastAPIOffline: /docs and /redoc load Swagger UI and ReDoc from Stride itself, never from a CDN.
    app = FastAPIOffline(
        redoc_url=None,  # served by routes/ui.py, with a content policy that keeps ReDoc off its CDN
        title="Stride",
        description=(
            "Cited answers about running muscles and strength training for runners, from a fixed set of articles."
        ),
        version="0.1.0",
        lifespan=lifespan,
    )
    app.state.stride = state
    # Counted on the bytes received, so a chunked body is cut off at the limit, not read whole into memory.
    app.add_middleware(BodyLimit, max_bytes=MAX_BODY_BYTES)
    app.add_middleware(LoadShedder, limit=settings.max_in_flight, queue=settings.max_queued, paths=ANSWER_PATHS,
                       on_reject=metrics.reject, error_content=errors.error_content)
    # Added last, so outermost: a shed 503 or an early 413 still carries the CORS headers the widget needs.
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware, allow_origins=settings.cors_origins, allow_methods=["GET", "POST"],
            allow_headers=["Content-Type"], max_age=600,
            # Cross-origin callers read the query id to attach feedback to a /chat answer, and when to retry.
            expose_headers=["X-Stride-Query-Id", "Retry-After"],
        )

    @app.middleware("http")
    async def observe(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        started = time.perf_counter()
        response = await call_next(request)
        path = route_label(request)
        state.metrics.requests.labels(path, request.method, str(response.status_code)).inc()
        state.metrics.latency.labels(path).observe(time.perf_counter() - started)
        return response

    errors.install(app, settings.data_dir)
    app.openapi = lambda: errors.true_openapi(app)  # type: ignore[method-assign]

    from service.api.routes import articles, chat, coverage, feedback, health, reload, search, ui, v1

    for module in (health, search, chat, articles, feedback, coverage, reload, ui, v1):
        app.include_router(module.router)
    # MCP over streamable HTTP at exactly /mcp (service/mcp), behind the same STRIDE_API_KEYS as /v1.
    app.router.routes.append(EndpointRoute("/mcp", BearerGuard(mcp_endpoint, settings.api_keys)))
    return app
