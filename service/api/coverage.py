"""``GET /coverage``: the content-coverage report as HTML, for admins only (``X-Admin-Key``)."""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import APIRouter, Depends, Header, HTTPException, Request
from fastapi.responses import HTMLResponse

from service.api.deps import EngineDep

router = APIRouter(tags=["admin"])

DISABLED = "coverage is disabled: set STRIDE_ADMIN_API_KEY"


def require_admin(request: Request, x_admin_key: Annotated[str | None, Header()] = None) -> None:
    """404 when no key is configured (the report does not exist on this server), 401 on a missing or
    wrong key; compared in constant time so the key cannot be guessed byte by byte from timings."""
    expected = request.app.state.stride.settings.admin_api_key
    if not expected:
        raise HTTPException(status_code=404, detail=DISABLED)
    if not x_admin_key or not secrets.compare_digest(x_admin_key.encode(), expected.encode()):
        raise HTTPException(status_code=401, detail="missing or wrong X-Admin-Key header")


# Declared before the engine: FastAPI resolves dependencies in order, so a caller without the key
# gets 401/404 and learns nothing about whether the engine is loaded.
AdminDep = Annotated[None, Depends(require_admin)]


@router.get("/coverage", response_class=HTMLResponse, include_in_schema=False)
def coverage(_: AdminDep, engine: EngineDep, request: Request) -> HTMLResponse:
    """The same view as ``stride coverage`` writes to report.html, built from the live query log.
    A plain ``def``: FastAPI runs it in a worker thread, so building does not block the event loop."""
    from service.coverage.build import build_coverage
    from service.coverage.render import render_html

    store = request.app.state.stride.feedback
    rows = list(store.iter_queries()) if store is not None else None
    html = render_html(build_coverage(engine, rows))
    # Admin-only page holding users' questions: never stored by a shared cache.
    return HTMLResponse(html, headers={"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"})
