"""``POST /feedback`` (thumbs up/down on an answer) and the static UI: ``GET /``, ``/widget.js``, ``/widget.css``."""

from __future__ import annotations

import hashlib
from functools import cache
from importlib import resources
from typing import Literal

from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field, field_validator

from service.feedback import MAX_COMMENT_CHARS, FeedbackStore, UnknownQuery

router = APIRouter(tags=["feedback"])


class FeedbackRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    query_id: str = Field(..., min_length=1, max_length=64)
    rating: Literal["up", "down"]
    comment: str | None = Field(None, max_length=MAX_COMMENT_CHARS)

    @field_validator("comment")
    @classmethod
    def _comment(cls, v: str | None) -> str | None:
        if v is not None and "\x00" in v:
            raise ValueError("comment must not contain NUL characters")
        return v


class FeedbackResponse(BaseModel):
    id: int


def _store(request: Request) -> FeedbackStore:
    store = request.app.state.stride.feedback
    if store is None:
        raise HTTPException(status_code=503, detail="feedback is not being stored on this server")
    return store


@router.post("/feedback", response_model=FeedbackResponse)
async def post_feedback(req: FeedbackRequest, request: Request) -> dict:
    """Thumbs up or down (with an optional comment) on an answer, by the ``query_id`` that came with it."""
    store = _store(request)
    try:
        fid = await run_in_threadpool(store.add_feedback, req.query_id, 1 if req.rating == "up" else -1, req.comment)
    except UnknownQuery as err:
        raise HTTPException(status_code=404, detail=str(err)) from err
    return {"id": fid}


# --- static UI ------------------------------------------------------------------------------

_TYPES = {
    "index.html": "text/html; charset=utf-8",
    "widget.js": "text/javascript; charset=utf-8",
    "widget.css": "text/css; charset=utf-8",
}
# widget.js is fetched by every page that embeds it: cache a little, then revalidate cheaply by ETag.
# The page always revalidates so a deploy shows up at once.
_CACHE = {"index.html": "no-cache", "widget.js": "public, max-age=300", "widget.css": "public, max-age=300"}
# The chat page loads only its own script and style and talks only to this origin.
_PAGE_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'self'"
)


@cache
def _asset(name: str) -> tuple[bytes, str]:
    data = resources.files("service").joinpath("static", name).read_bytes()
    return data, '"' + hashlib.sha256(data).hexdigest()[:16] + '"'


def _serve(name: str, request: Request) -> Response:
    data, etag = _asset(name)
    headers = {"ETag": etag, "Cache-Control": _CACHE[name], "X-Content-Type-Options": "nosniff"}
    if name == "index.html":
        headers["Content-Security-Policy"] = _PAGE_CSP
    if etag in request.headers.get("if-none-match", ""):
        return Response(status_code=304, headers=headers)
    return Response(content=data, media_type=_TYPES[name], headers=headers)


@router.get("/", include_in_schema=False)
def index(request: Request) -> Response:
    """The full chat page (the widget in full-page mode)."""
    return _serve("index.html", request)


@router.get("/widget.js", include_in_schema=False)
def widget_js(request: Request) -> Response:
    """The embeddable widget: ``<script src="https://HOST/widget.js" data-stride-url="https://HOST" defer>``."""
    return _serve("widget.js", request)


@router.get("/widget.css", include_in_schema=False)
def widget_css(request: Request) -> Response:
    return _serve("widget.css", request)
