"""``POST /chat`` and ``POST /chat/stream`` (Server-Sent Events)."""

from __future__ import annotations

import json
import logging
import re
import sqlite3
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Response
from fastapi.concurrency import iterate_in_threadpool, run_in_threadpool
from sse_starlette.sse import EventSourceResponse

from service.answering.engine import ChatResult, Engine
from service.answering.query import Turn
from service.api.deps import EngineDep, StateDep
from service.api.schemas import ChatRequest, ChatResponse, error_responses
from service.api.state import AppState
from service.api.throttle import ChatLimit

router = APIRouter(tags=["chat"])
log = logging.getLogger(__name__)
QUERY_ID_HEADER = "X-Stride-Query-Id"


def answer_and_log(req: ChatRequest, state: AppState, engine: Engine) -> tuple[ChatResponse, str | None]:
    """Answer, count the outcome and log the exchange; returns the response and its query id (for feedback)."""
    return finish(req, state, engine.chat(req.message, turns(req)))


def turns(req: ChatRequest) -> list[Turn]:
    return [Turn(m.role, m.content) for m in req.history]


def finish(req: ChatRequest, state: AppState, result: ChatResult) -> tuple[ChatResponse, str | None]:
    """A finished answer: counted, logged, and as the API returns it, with its query id."""
    state.metrics.answers.labels("declined" if result.abstained else "answered").inc()
    if result.provenance.decline_reason is not None:
        state.metrics.declines.labels(result.provenance.decline_reason).inc()
    if result.provenance.llm is not None and result.provenance.mode != "llm" and not result.abstained:
        state.metrics.llm_fallbacks.inc()
    response = ChatResponse(answer=result.answer, abstained=result.abstained, citations=result.citations,
                            provenance=result.provenance, suggestions=result.suggestions)
    return response, _log_query(state, req, response)


class StreamedResponse(ChatResponse):
    query_id: str | None


async def stream_answer(req: ChatRequest, state: AppState, engine: Engine) -> AsyncIterator[str | StreamedResponse]:
    """The answer's text as the engine makes it (a unit at a time, each with its marker), then the finished
    response, counted and logged, with its query id. The engine runs in a worker thread one step at a time,
    so the event loop never waits on it."""
    result: ChatResult | None = None
    async for item in iterate_in_threadpool(engine.chat_stream(req.message, turns(req))):
        if isinstance(item, ChatResult):
            result = item
        else:
            yield item.text
    assert result is not None
    if result.abstained:
        yield result.answer  # a decline is a result alone: its text is sent here
    response, query_id = await run_in_threadpool(finish, req, state, result)
    yield StreamedResponse(**response.model_dump(), query_id=query_id)


def _log_query(state: AppState, req: ChatRequest, response: ChatResponse) -> str | None:
    """The query id for the logged exchange, at once: the store only queues the row (its writer thread does
    the SQLite write), so a locked database never delays the answer. None when not logged."""
    if state.feedback is None:
        return None
    try:
        return state.feedback.log_query(req.message, [m.model_dump() for m in req.history], response.model_dump())
    except sqlite3.Error:  # a store that does write here (a full disk, a broken file) must not cost the answer
        log.exception("could not log the query")
        return None


_ERRORS = error_responses(400, 413, 422, 429, 503)
_QUERY_ID = {QUERY_ID_HEADER: {"description": "The logged exchange, for POST /feedback (absent when not logged).",
                               "schema": {"type": "string"}}}
_STREAM = {
    "description": "Server-Sent Events, as the answer is made: `token` events (`{\"text\"}`, a few words at a "
                   "time), then one `citations` event (`{\"citations\", \"abstained\", \"provenance\", "
                   "\"query_id\", \"suggestions\"}`), then `done` (`{\"abstained\"}`).",
    # Each event as Schemathesis and OpenAPI 3.2 read a stream: its name and its JSON data.
    "content": {"text/event-stream": {"schema": {
        "type": "object", "required": ["event", "data"],
        "properties": {"event": {"enum": ["token", "citations", "done"]},
                       "data": {"type": "string", "contentMediaType": "application/json"}},
    }}},
}


@router.post("/chat", response_model=ChatResponse, responses={200: {"headers": _QUERY_ID}, **_ERRORS})
def chat(req: ChatRequest, response: Response, _: ChatLimit, state: StateDep, engine: EngineDep) -> ChatResponse:
    """A short answer from the articles with a citation after every sentence, or a plain decline.
    The ``X-Stride-Query-Id`` header names the logged exchange for ``POST /feedback``."""
    body, query_id = answer_and_log(req, state, engine)
    if query_id:
        response.headers[QUERY_ID_HEADER] = query_id
    return body


def stream_pieces(answer: str) -> list[str]:
    # A few words at a time, never splitting a citation marker.
    tokens = re.findall(r"\s*\S+\s*", answer)  # a piece's leading space (between units) is kept
    return ["".join(tokens[i : i + 3]) for i in range(0, len(tokens), 3)]


@router.post("/chat/stream", response_class=EventSourceResponse, responses={200: _STREAM, **_ERRORS})
async def chat_stream(req: ChatRequest, _: ChatLimit, state: StateDep, engine: EngineDep) -> EventSourceResponse:
    """Server-Sent Events, as the answer is made: ``token`` events with the answer text, then ``citations``
    (with the ``query_id`` for ``POST /feedback``), then ``done``."""

    async def events() -> AsyncIterator[dict[str, Any]]:
        async for item in stream_answer(req, state, engine):
            if isinstance(item, StreamedResponse):
                dumped = item.model_dump(mode="json")
                yield {"event": "citations", "data": json.dumps(
                    {"citations": dumped["citations"], "abstained": item.abstained,
                     "provenance": dumped["provenance"], "query_id": item.query_id,
                     "suggestions": item.suggestions})}
                yield {"event": "done", "data": json.dumps({"abstained": item.abstained})}
            else:
                for piece in stream_pieces(item):
                    yield {"event": "token", "data": json.dumps({"text": piece})}

    return EventSourceResponse(events())
