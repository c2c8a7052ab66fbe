"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from service.api.deps import StateDep
from service.api.schemas import Readiness

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is up (it may still be loading). Async and touching nothing: it answers even while
    every worker thread is busy or the feedback database is locked."""
    return {"status": "ok"}


@router.get("/readyz", response_model=Readiness,
            responses={503: {"model": Readiness, "description": "Still loading, or could not load (see detail)."}})
def readyz(state: StateDep) -> JSONResponse:
    """Ready once the index and the models are loaded; names the index version served, and a newer one
    that failed to load, if any."""
    if state.engine is None:
        body = Readiness(status="error" if state.error else "loading", detail=state.error)
        return JSONResponse(status_code=503, content=body.model_dump())
    if not state.engine.search_index.healthy():  # a Chroma server that went away; recovers when it returns
        body = Readiness(status="unavailable", index_version=state.engine.snapshot.version,
                         detail=f"the index store at {state.settings.chroma_url} is unreachable")
        return JSONResponse(status_code=503, content=body.model_dump())
    return JSONResponse(Readiness(status="ready", index_version=state.engine.snapshot.version,
                                  startup_seconds=state.startup_seconds, failed_version=state.failed_version,
                                  reload_error=state.reload_error).model_dump())


@router.get("/metrics", response_class=Response,
            responses={200: {"description": "Prometheus text format.", "content": {CONTENT_TYPE_LATEST: {}}}})
def metrics(state: StateDep) -> Response:
    return Response(generate_latest(state.metrics.registry), media_type=CONTENT_TYPE_LATEST)
