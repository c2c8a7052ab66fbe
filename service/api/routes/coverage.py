"""``GET /coverage``: the content-coverage report as HTML, for admins only (``X-Admin-Key``)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from service.api.deps import AdminDep, EngineDep, StateDep

router = APIRouter(tags=["admin"])


@router.get("/coverage", response_class=HTMLResponse, include_in_schema=False)
def coverage(_: AdminDep, engine: EngineDep, state: StateDep) -> HTMLResponse:
    """The same view as ``stride coverage`` writes to report.html, from the live query log; rebuilt only
    when the index version or the log has changed since the last view. A plain ``def``: FastAPI runs it
    in a worker thread, so building does not block the event loop."""
    html = state.coverage.html(engine, state.feedback)
    # Admin-only page holding users' questions: never stored by a shared cache.
    return HTMLResponse(html, headers={"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"})
