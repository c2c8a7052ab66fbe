"""Optional LLM mode against a real local server that speaks the chat-completions protocol."""

from __future__ import annotations

import asyncio
import json
import re
import time

import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse

from service.answering.prompts import load_prompt
from tests.fakes import build_fake_engine
from tests.servers import free_port, serve

UNSUPPORTED = "Running also cures every knee injury within a week. [2]"


def chat_completions_app(delay: float = 0.0) -> tuple[FastAPI, list[dict]]:
    """A minimal OpenAI-compatible server: it answers with the first sentence of passage [1],
    cited, plus one invented sentence that no passage supports."""
    app = FastAPI()
    seen: list[dict] = []

    @app.get("/")
    def root() -> dict:
        return {"ok": True}

    @app.post("/v1/chat/completions")
    async def completions(request: Request):  # type: ignore[no-untyped-def]
        body = await request.json()
        seen.append(body)
        if delay:
            await asyncio.sleep(delay)
        prompt = body["messages"][-1]["content"]
        passage = re.search(r"\[1\] \(.*?\)\n(.+?)(?:\n\n\[2\]|\n\nQuestion:)", prompt, re.DOTALL).group(1)
        first = re.split(
            r"(?<=[.!?])\s", passage.strip().splitlines()[-1] if passage.strip().startswith("|") else passage.strip()
        )[0]
        text = f"{first} [1] {UNSUPPORTED}"
        created = int(time.time())
        if not body.get("stream"):
            return JSONResponse({"id": "x", "object": "chat.completion", "created": created, "model": body["model"],
                                 "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                                              "finish_reason": "stop"}]})

        async def events():  # type: ignore[no-untyped-def]
            for piece in re.findall(r"\S+\s*", text):
                chunk = {"id": "x", "object": "chat.completion.chunk", "created": created, "model": body["model"],
                         "choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}]}
                yield f"data: {json.dumps(chunk)}\n\n"
            done = {"id": "x", "object": "chat.completion.chunk", "created": created, "model": body["model"],
                    "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
            yield f"data: {json.dumps(done)}\n\n"
            yield "data: [DONE]\n\n"

        return StreamingResponse(events(), media_type="text/event-stream")

    return app, seen


def engine_with_llm(settings, base_url: str, timeout: float = 5.0):
    """Settings with an LLM endpoint: ``Engine.load`` wires the LLM answerer itself."""
    s = settings.model_copy(update={"llm_base_url": base_url, "llm_model": "test-model", "llm_timeout_s": timeout,
                                    "abstain_threshold": 0.05})
    return build_fake_engine(s)


def test_prompt_placeholders_match_what_the_code_fills_in() -> None:
    prompt = load_prompt("answer")
    assert prompt.placeholders == {"question", "passages"}
    assert "{" not in prompt.render(question="q", passages="p")


def test_llm_answer_keeps_supported_sentences_and_drops_invented_ones(fake_index) -> None:
    app, seen = chat_completions_app()
    with serve(app) as base:
        engine = engine_with_llm(fake_index, base + "/v1")
        result = engine.chat("What do the glutes do when running?")
    assert seen and seen[0]["stream"] is True  # the streaming protocol was used
    assert result.provenance.mode == "llm"
    assert result.provenance.llm is not None and result.provenance.llm.prompt_sha256 == load_prompt("answer").sha256
    assert "cures every knee injury" not in result.answer
    assert result.citations and re.search(r"\[1\]", result.answer)
    for c in result.citations:
        text = engine.article(c.article_id).text
        assert text[c.start : c.end] == c.quote


def test_unreachable_endpoint_falls_back_to_the_extractive_answer(fake_index) -> None:
    engine = engine_with_llm(fake_index, f"http://127.0.0.1:{free_port()}/v1")
    extractive = build_fake_engine(fake_index.model_copy(update={"abstain_threshold": 0.05}))
    question = "What do the glutes do when running?"
    result = engine.chat(question)
    assert result.provenance.mode == "extractive"
    assert result.provenance.llm is not None and result.provenance.llm.error
    assert result.answer == extractive.chat(question).answer


def test_slow_endpoint_times_out_and_falls_back(fake_index) -> None:
    app, _ = chat_completions_app(delay=2.0)
    with serve(app) as base:
        engine = engine_with_llm(fake_index, base + "/v1", timeout=0.5)
        started = time.monotonic()
        result = engine.chat("What do the glutes do when running?")
        elapsed = time.monotonic() - started
    assert result.provenance.mode == "extractive" and result.citations
    assert elapsed < 1.5  # answered on the timeout, before the endpoint's reply


@pytest.mark.parametrize("reply", ["NOT COVERED", "I think you should buy new shoes. [1]"])
def test_llm_that_declines_or_cites_nothing_supported_leaves_the_extractive_answer(fake_index, reply) -> None:
    app = FastAPI()

    @app.get("/")
    def root() -> dict:
        return {}

    @app.post("/v1/chat/completions")
    async def completions(request: Request):  # type: ignore[no-untyped-def]
        body = await request.json()
        chunk = {"id": "x", "object": "chat.completion.chunk", "created": 0, "model": body["model"],
                 "choices": [{"index": 0, "delta": {"content": reply}, "finish_reason": "stop"}]}

        async def events():  # type: ignore[no-untyped-def]
            yield f"data: {json.dumps(chunk)}\n\n"
            yield "data: [DONE]\n\n"

        return StreamingResponse(events(), media_type="text/event-stream")

    with serve(app) as base:
        result = engine_with_llm(fake_index, base + "/v1").chat("What do the glutes do when running?")
    assert result.provenance.mode == "extractive" and result.citations
