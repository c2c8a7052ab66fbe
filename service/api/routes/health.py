"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from service.api.deps import StateDep

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is up (it may still be loading). Async and touching nothing: it answers even while
    every worker thread is busy or the feedback database is locked."""
    return {"status": "ok"}


@router.get("/readyz")
def readyz(state: StateDep) -> JSONResponse:
    """Ready once the index and the models are loaded."""
    if state.engine is None:
        return JSONResponse(status_code=503, content={"status": "error" if state.error else "loading",
                                                      "detail": state.error})
    return JSONResponse({"status": "ready", "index_version": state.engine.snapshot.version,
                         "startup_seconds": state.startup_seconds})


@router.get("/metrics")
def metrics(state: StateDep) -> Response:
    return Response(generate_latest(state.metrics.registry), media_type=CONTENT_TYPE_LATEST)
