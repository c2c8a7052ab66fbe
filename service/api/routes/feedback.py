"""``POST /feedback``: thumbs up or down on a logged answer."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException
from fastapi.concurrency import run_in_threadpool

from service.api.deps import FeedbackDep
from service.api.schemas import FeedbackRequest, FeedbackResponse, error_responses
from service.api.throttle import FeedbackLimit
from service.feedback.store import StoreUnavailable, UnknownQuery

router = APIRouter(tags=["feedback"])


@router.post("/feedback", response_model=FeedbackResponse, responses=error_responses(400, 404, 413, 422, 429, 503))
async def post_feedback(req: FeedbackRequest, _: FeedbackLimit, store: FeedbackDep) -> FeedbackResponse:
    """Thumbs up or down (with an optional comment) on an answer, by the ``query_id`` that came with it."""
    try:
        fid = await run_in_threadpool(store.add_feedback, req.query_id, 1 if req.rating == "up" else -1, req.comment)
    except UnknownQuery as err:
        raise HTTPException(status_code=404, detail=str(err)) from err
    except StoreUnavailable as err:  # the database is locked by another process: transient, say when to retry
        raise HTTPException(status_code=503, detail=str(err),
                            headers={"Retry-After": str(err.retry_after)}) from err
    return FeedbackResponse(id=fid)
