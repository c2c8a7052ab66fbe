from __future__ import annotations

import json
import logging
import re
import sqlite3
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.concurrency import run_in_threadpool
from sse_starlette.sse import EventSourceResponse

from service.api.deps import EngineDep
from service.engine import Engine
from service.query import Turn
from service.schemas import ChatRequest, ChatResponse

router = APIRouter(tags=["chat"])
log = logging.getLogger(__name__)
QUERY_ID_HEADER = "X-Stride-Query-Id"


def _turns(req: ChatRequest) -> list[Turn]:
    return [Turn(m.role, m.content) for m in req.history]


def _answer(req: ChatRequest, request: Request, engine: Engine) -> tuple[dict[str, Any], str | None]:
    """Answer, count the outcome and log the exchange; returns the answer dict and its query id (for feedback)."""
    result = engine.chat(req.message, _turns(req))
    request.app.state.stride.metrics.answers.labels("declined" if result.abstained else "answered").inc()
    body = result.as_dict()
    return body, _log_query(request, req, body)


def _log_query(request: Request, req: ChatRequest, body: dict[str, Any]) -> str | None:
    store = request.app.state.stride.feedback
    if store is None:
        return None
    try:
        return store.log_query(req.message, [m.model_dump() for m in req.history], body)
    except sqlite3.Error:  # a full disk or locked file must not cost the user their answer
        log.exception("could not log the query")
        return None


@router.post("/chat", response_model=ChatResponse)
def chat(req: ChatRequest, request: Request, response: Response, engine: EngineDep) -> dict:
    """A short answer from the articles with a citation after every sentence, or a plain decline.
    The ``X-Stride-Query-Id`` header names the logged exchange for ``POST /feedback``."""
    body, query_id = _answer(req, request, engine)
    if query_id:
        response.headers[QUERY_ID_HEADER] = query_id
    return body


def _pieces(answer: str) -> list[str]:
    # A few words at a time, never splitting a citation marker.
    tokens = re.findall(r"\S+\s*", answer)
    return ["".join(tokens[i : i + 3]) for i in range(0, len(tokens), 3)]


@router.post("/chat/stream")
async def chat_stream(req: ChatRequest, request: Request, engine: EngineDep) -> EventSourceResponse:
    """Server-Sent Events: ``token`` events with the answer text, then ``citations`` (with the ``query_id`` for
    ``POST /feedback``), then ``done``."""
    body, query_id = await run_in_threadpool(_answer, req, request, engine)

    async def events() -> AsyncIterator[dict]:
        for piece in _pieces(body["answer"]):
            yield {"event": "token", "data": json.dumps({"text": piece})}
        yield {"event": "citations", "data": json.dumps(
            {"citations": body["citations"], "abstained": body["abstained"], "provenance": body["provenance"],
             "query_id": query_id})}
        yield {"event": "done", "data": json.dumps({"abstained": body["abstained"]})}

    return EventSourceResponse(events())
