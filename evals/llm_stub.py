"""A local OpenAI-compatible chat-completions server that writes from the prompt's passages, streamed a
word at a time as a model generates: LLM mode's stand-in for the bench (time to first token) and the tests.
It cites what it says, and adds one invented sentence no passage supports, which verification must drop."""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

UNSUPPORTED = "Running also cures every knee injury within a week. [2]"


def chat_completions_app(delay: float = 0.0, token_delay: float = 0.0, passages: int = 1
                         ) -> tuple[FastAPI, list[dict[str, Any]]]:
    """A minimal OpenAI-compatible server: it answers with the first sentence of each of the first
    ``passages`` passages, cited, plus one invented sentence that no passage supports; streamed a word at
    a time, ``token_delay`` seconds apart, as a model generates."""
    app = FastAPI()
    seen: list[dict[str, Any]] = []

    @app.get("/")
    def root() -> dict[str, bool]:
        return {"ok": True}

    @app.post("/v1/chat/completions")
    async def completions(request: Request) -> Response:
        body = await request.json()
        seen.append(body)
        if delay:
            await asyncio.sleep(delay)
        prompt = body["messages"][-1]["content"]
        said = []
        for n in range(1, passages + 1):
            found = re.search(rf"\[{n}\] \(.*?\)\n(.+?)(?:\n\n\[{n + 1}\]|\n\nQuestion:)", prompt, re.DOTALL)
            if found is None:  # fewer passages in the prompt than asked for
                break
            passage = found.group(1)
            body_text = passage.strip().splitlines()[-1] if passage.strip().startswith("|") else passage.strip()
            first = re.split(r"(?<=[.!?])\s", body_text)[0]
            said.append(f"{first} [{n}]")
        text = " ".join(said) + f" {UNSUPPORTED}"
        created = int(time.time())
        if not body.get("stream"):
            return JSONResponse({"id": "x", "object": "chat.completion", "created": created, "model": body["model"],
                                 "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                                              "finish_reason": "stop"}]})

        async def events() -> AsyncIterator[str]:
            for piece in re.findall(r"\S+\s*", text):
                await asyncio.sleep(token_delay)
                chunk = {"id": "x", "object": "chat.completion.chunk", "created": created, "model": body["model"],
                         "choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}]}
                yield f"data: {json.dumps(chunk)}\n\n"
            done = {"id": "x", "object": "chat.completion.chunk", "created": created, "model": body["model"],
                    "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
            yield f"data: {json.dumps(done)}\n\n"
            yield "data: [DONE]\n\n"

        return StreamingResponse(events(), media_type="text/event-stream")

    return app, seen
