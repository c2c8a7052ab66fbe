"""The OpenAI-compatible API: ``GET /v1/models`` and ``POST /v1/chat/completions`` (plain and streamed), so
the ``openai`` SDK, LangChain's ``ChatOpenAI``, Open WebUI and LibreChat can talk to Stride as to a model.
Bearer keys from ``STRIDE_API_KEYS``; without keys the chat rate limit applies per client, as on /chat."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import ValidationError
from sse_starlette.sse import EventSourceResponse

from service.answering.engine import Engine
from service.api import openai_wire as wire
from service.api.auth import key_accepted
from service.api.deps import EngineDep, StateDep, get_state
from service.api.errors import OpenAIError, validation_message
from service.api.routes.chat import StreamedResponse, answer_and_log, stream_answer, stream_pieces
from service.api.schemas import ChatRequest, Message
from service.api.throttle import client_of

router = APIRouter(prefix="/v1", tags=["openai"])


def require_key(request: Request, authorization: Annotated[str | None, Header()] = None) -> None:
    if not key_accepted(get_state(request).settings.api_keys, authorization):
        raise HTTPException(status_code=401, headers={"WWW-Authenticate": "Bearer"},
                            detail="missing or wrong API key: send Authorization: Bearer <one of STRIDE_API_KEYS>")


def open_surface_limit(request: Request) -> None:
    """Key holders are known callers; an open /v1 is as anonymous as the widget and shares its chat limit."""
    state = get_state(request)
    if not state.settings.api_keys:
        state.rate_limits.check("chat", client_of(request))


KeyDep = Annotated[None, Depends(require_key)]
OpenLimit = Annotated[None, Depends(open_surface_limit)]

_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": wire.ErrorResponse, "description": text}
    for code, text in [
        (400, "The request is not a valid Chat Completions request, or breaks Stride's message rules."),
        (401, "Missing or wrong API key (when STRIDE_API_KEYS is set)."),
        (404, "Unknown model: see GET /v1/models."),
        (413, "The request body is over 256 KB."),
        (429, "Too many requests from this client (only when no API keys are set)."),
        (503, "Not ready yet, or answering as many questions as it can."),
    ]
}
_STREAM = {
    "description": "With `stream: true`: `chat.completion.chunk` events as Server-Sent Events, then `[DONE]`. "
                   "The finishing chunk carries the `stride` extension (citations, provenance).",
    "content": {"text/event-stream": {"schema": {"type": "object", "required": ["data"],
                                                 "properties": {"data": {"type": "string"}}}}},
}


def _created(engine: Engine) -> int:
    try:
        return int(datetime.fromisoformat(engine.snapshot.manifest.built_at.replace("Z", "+00:00")).timestamp())
    except (ValueError, AttributeError):
        return 0


@router.get("/models", response_model=wire.ModelList, responses={k: v for k, v in _ERRORS.items() if k in (401, 503)})
def models(_: KeyDep, engine: EngineDep) -> dict[str, Any]:
    """One model, ``stride``: answers quoted from the articles, with citations."""
    return {"object": "list",
            "data": [{"id": wire.MODEL_ID, "object": "model", "created": _created(engine), "owned_by": "stride"}]}


def _chat_request(req: wire.V1ChatRequest) -> ChatRequest:
    if req.model != wire.MODEL_ID:
        raise OpenAIError(404, f"The model {req.model!r} does not exist; Stride serves {wire.MODEL_ID!r} "
                               "(see GET /v1/models)", code="model_not_found", param="model")
    try:
        question, history = wire.conversation(req.messages)
        return ChatRequest(message=question, history=[Message(role=role, content=text)
                                                      for role, text in history])
    except ValidationError as err:
        raise OpenAIError(400, validation_message(err), param="messages") from err
    except ValueError as err:
        raise OpenAIError(400, str(err), param="messages") from err


@router.post("/chat/completions", response_model=wire.ChatCompletion, responses={200: _STREAM, **_ERRORS})
async def chat_completions(req: wire.V1ChatRequest, _: KeyDep, __: OpenLimit, state: StateDep,
                           engine: EngineDep) -> Any:
    """Chat Completions: the answer with its ``[n]`` markers, then a Markdown Sources block; the structured
    citations, the decline flag, provenance and the query id (for ``POST /feedback``) in ``stride``.
    Earlier user and assistant messages are the history; system messages are ignored."""
    chat_req = _chat_request(req)
    completion_id = "chatcmpl-" + uuid.uuid4().hex
    created = int(time.time())
    if not req.stream:
        body, query_id = await run_in_threadpool(answer_and_log, chat_req, state, engine)
        content = wire.assistant_content(body.answer, body.citations)
        token_usage = await run_in_threadpool(_usage, engine, chat_req, content)
        return wire.completion(completion_id, created, content, wire.extension(body.model_dump(mode="json"), query_id),
                               token_usage)
    include_usage = bool(req.stream_options and req.stream_options.include_usage)

    async def events() -> AsyncIterator[dict[str, Any]]:
        yield {"data": json.dumps(wire.role_chunk(completion_id, created))}
        async for item in stream_answer(chat_req, state, engine):
            if isinstance(item, StreamedResponse):
                content = wire.assistant_content(item.answer, item.citations)
                token_usage = await run_in_threadpool(_usage, engine, chat_req, content)
                stride = wire.extension(item.model_dump(mode="json"), item.query_id)
                tail = [wire.sources_block(item.citations)] if item.citations else []
                for chunk in wire.closing_chunks(completion_id, created, tail, stride,
                                                 token_usage if include_usage else None):
                    yield {"data": json.dumps(chunk)}
            else:
                for piece in stream_pieces(item):
                    yield {"data": json.dumps(wire.content_chunk(completion_id, created, piece))}
        yield {"data": "[DONE]"}

    return EventSourceResponse(events())


def _usage(engine: Engine, req: ChatRequest, content: str) -> dict[str, int]:
    prompt = sum(engine.count_tokens(m.content) for m in req.history) + engine.count_tokens(req.message)
    return wire.usage(prompt, engine.count_tokens(content))
