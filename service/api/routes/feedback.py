"""``POST /feedback``: thumbs up or down on a logged answer; ``GET /admin/feedback``: the recent thumbs-down."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse

from service.api.deps import AdminDep, FeedbackDep, StateDep
from service.api.schemas import FeedbackRequest, FeedbackResponse, error_responses
from service.api.throttle import FeedbackLimit
from service.feedback.store import StoreUnavailable, UnknownQuery

router = APIRouter(tags=["feedback"])


@router.post("/feedback", response_model=FeedbackResponse, responses=error_responses(400, 404, 413, 422, 429, 503))
async def post_feedback(req: FeedbackRequest, _: FeedbackLimit, store: FeedbackDep,
                        state: StateDep) -> FeedbackResponse:
    """Thumbs up or down (with an optional comment) on an answer, by the ``query_id`` that came with it."""
    try:
        fid = await run_in_threadpool(store.add_feedback, req.query_id, 1 if req.rating == "up" else -1, req.comment)
    except UnknownQuery as err:
        raise HTTPException(status_code=404, detail=str(err)) from err
    except StoreUnavailable as err:  # the database is locked by another process: transient, say when to retry
        raise HTTPException(status_code=503, detail=str(err),
                            headers={"Retry-After": str(err.retry_after)}) from err
    state.metrics.feedback.labels(req.rating).inc()
    return FeedbackResponse(id=fid)


ADMIN_PAGE_ROWS = 100


@router.get("/admin/feedback", response_class=HTMLResponse, include_in_schema=False)
def admin_feedback(_: AdminDep, store: FeedbackDep) -> HTMLResponse:
    """The newest thumbs-down with the question, the answer and its sources, for the content team."""
    from service.feedback.export import export_row, render_page

    rows = [export_row(r) for r in store.feedback(ADMIN_PAGE_ROWS, rating=-1)]
    # Admin-only page holding users' questions: never stored by a shared cache.
    return HTMLResponse(render_page(rows, ADMIN_PAGE_ROWS),
                        headers={"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"})
