from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz() -> dict:
    """The process is up (it may still be loading)."""
    return {"status": "ok"}


@router.get("/readyz")
def readyz(request: Request) -> JSONResponse:
    """Ready once the index and the models are loaded."""
    state = request.app.state.stride
    if state.engine is None:
        return JSONResponse(status_code=503, content={"status": "error" if state.error else "loading",
                                                      "detail": state.error})
    return JSONResponse({"status": "ready", "index_version": state.engine.snapshot.version,
                         "startup_seconds": state.startup_seconds})


@router.get("/metrics")
def metrics(request: Request) -> Response:
    return Response(generate_latest(request.app.state.stride.metrics.registry), media_type=CONTENT_TYPE_LATEST)
