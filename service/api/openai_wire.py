"""The OpenAI Chat Completions wire format for Stride's answers. Pure: request shapes, the conversation as
Stride's history, the assistant message (answer, then a Markdown Sources block for plain chat UIs), the
completion and its stream chunks, and the OpenAI error shape."""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from service.answering.citations import Citation

MODEL_ID = "stride"
SOURCES_HEADING = "**Sources**"
HISTORY_MESSAGES = 40  # as POST /chat: the most recent ones; older turns cannot change a follow-up
HISTORY_CHARS = 8000


class TextPart(BaseModel):
    model_config = ConfigDict(extra="allow")
    type: str
    text: str | None = None


class V1Message(BaseModel):
    model_config = ConfigDict(extra="allow")
    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: str | list[TextPart] | None = None


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="allow")
    include_usage: bool = False


class V1ChatRequest(BaseModel):
    """OpenAI's request; sampling and tool parameters are accepted and ignored (Stride quotes, it does not
    sample), system and developer messages too (Stride's rules are not negotiable)."""

    model_config = ConfigDict(extra="allow")
    model: str = Field(..., max_length=200)
    messages: list[V1Message] = Field(..., min_length=1, max_length=1000)
    stream: bool = False
    stream_options: StreamOptions | None = None


class ErrorDetail(BaseModel):
    message: str
    type: str
    param: str | None = None
    code: str | None = None


class ErrorResponse(BaseModel):
    error: ErrorDetail


class Model(BaseModel):
    id: str
    object: Literal["model"]
    created: int
    owned_by: str


class ModelList(BaseModel):
    object: Literal["list"]
    data: list[Model]


class AssistantMessage(BaseModel):
    role: Literal["assistant"]
    content: str


class Choice(BaseModel):
    index: int
    message: AssistantMessage
    finish_reason: Literal["stop"]
    logprobs: None = None


class Usage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class StrideExtension(BaseModel):
    """Beside the message: what a script needs to show or check the sources."""

    citations: list[Citation]
    abstained: bool
    provenance: dict[str, Any]
    query_id: str | None = Field(description="For POST /feedback; null when the exchange was not logged.")
    suggestions: list[str] = Field(default_factory=list, description="With a decline: topics to ask about instead.")


class ChatCompletion(BaseModel):
    id: str
    object: Literal["chat.completion"]
    created: int
    model: str
    choices: list[Choice]
    usage: Usage
    stride: StrideExtension


def error_body(message: str, status: int, code: str | None = None, param: str | None = None) -> dict[str, Any]:
    kind = {401: "authentication_error", 404: "invalid_request_error", 429: "rate_limit_error",
            503: "service_unavailable"}.get(status, "invalid_request_error" if status < 500 else "server_error")
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


def text_of(message: V1Message) -> str:
    if message.content is None:
        return ""
    if isinstance(message.content, str):
        return message.content
    return "\n".join(part.text for part in message.content if part.type == "text" and part.text)


def strip_sources(content: str) -> str:
    """An earlier Stride answer as history: its text without the Sources block the chat UI shows."""
    head, _, _ = content.partition("\n\n" + SOURCES_HEADING)
    return head


Role = Literal["user", "assistant"]


def conversation(messages: Sequence[V1Message]) -> tuple[str, list[tuple[Role, str]]]:
    """The question (the last user message) and the user/assistant turns before it as (role, text)."""
    turns: list[tuple[Role, str]] = [(m.role, text_of(m)) for m in messages
                                     if m.role == "user" or m.role == "assistant"]
    if not turns or turns[-1][0] != "user":
        raise ValueError("messages must end with a user message: the question")
    history = [(role, strip_sources(text)[:HISTORY_CHARS] if role == "assistant" else text[:HISTORY_CHARS])
               for role, text in turns[:-1]]
    return turns[-1][1], history[-HISTORY_MESSAGES:]


def sources_block(citations: Sequence[Citation]) -> str:
    """The citations under their article titles, each ``[n] Section: "quote"`` (the innermost heading), so a
    chat UI that shows only text still shows where every marker comes from, word for word."""
    if not citations:
        return ""
    by_title: dict[str, list[str]] = {}
    for c in citations:
        section = c.section.rpartition(" > ")[2]
        by_title.setdefault(c.title, []).append(
            f"- [{c.n}] " + (f"{section}: " if section else "") + f'"{_one_line(c.quote)}"')
    return f"\n\n{SOURCES_HEADING}\n" + "".join(f"\n*{title}*\n" + "\n".join(lines) + "\n"
                                                 for title, lines in by_title.items()).rstrip("\n")


def _one_line(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def assistant_content(answer: str, citations: Sequence[Citation]) -> str:
    return answer + sources_block(citations)


def extension(body: dict[str, Any], query_id: str | None) -> dict[str, Any]:
    """What travels beside the message: the structured citations, the decline flag, provenance, query id."""
    return {"citations": body["citations"], "abstained": body["abstained"], "provenance": body["provenance"],
            "query_id": query_id, "suggestions": body.get("suggestions", [])}


def usage(prompt_tokens: int, completion_tokens: int) -> dict[str, int]:
    return {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens}


def completion(completion_id: str, created: int, content: str, stride: dict[str, Any],
               token_usage: dict[str, int]) -> dict[str, Any]:
    return {
        "id": completion_id, "object": "chat.completion", "created": created, "model": MODEL_ID,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop",
                     "logprobs": None}],
        "usage": token_usage,
        "stride": stride,
    }


def _chunk(completion_id: str, created: int, delta: dict[str, Any], finish: str | None = None,
           **extra: Any) -> dict[str, Any]:
    return {"id": completion_id, "object": "chat.completion.chunk", "created": created, "model": MODEL_ID,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}], **extra}


def role_chunk(completion_id: str, created: int) -> dict[str, Any]:
    return _chunk(completion_id, created, {"role": "assistant", "content": ""})


def content_chunk(completion_id: str, created: int, text: str) -> dict[str, Any]:
    return _chunk(completion_id, created, {"content": text})


def closing_chunks(completion_id: str, created: int, tail: Sequence[str], stride: dict[str, Any],
                   token_usage: dict[str, int] | None) -> Iterator[dict[str, Any]]:
    """After the answer: the ``tail`` text (the Sources block), the finish with the ``stride`` extension and,
    with ``include_usage``, a last chunk with empty choices and the usage."""
    for text in tail:
        yield content_chunk(completion_id, created, text)
    yield _chunk(completion_id, created, {}, "stop", stride=stride)
    if token_usage is not None:
        yield {"id": completion_id, "object": "chat.completion.chunk", "created": created, "model": MODEL_ID,
               "choices": [], "usage": token_usage}
