"""``GET /coverage``: the content-coverage report as HTML, for admins only (``X-Admin-Key``)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from service.api.deps import AdminDep, EngineDep, StateDep

router = APIRouter(tags=["admin"])


@router.get("/coverage", response_class=HTMLResponse, include_in_schema=False)
def coverage(_: AdminDep, engine: EngineDep, state: StateDep) -> HTMLResponse:
    """The same view as ``stride coverage`` writes to report.html, built from the live query log.
    A plain ``def``: FastAPI runs it in a worker thread, so building does not block the event loop."""
    from service.coverage.build import build_coverage
    from service.coverage.render import render_html

    rows = list(state.feedback.iter_queries()) if state.feedback is not None else None
    html = render_html(build_coverage(engine, rows, eval_questions=state.eval_questions))
    # Admin-only page holding users' questions: never stored by a shared cache.
    return HTMLResponse(html, headers={"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"})
