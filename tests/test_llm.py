"""Optional LLM mode against a real local server that speaks the chat-completions protocol."""

from __future__ import annotations

import json
import re
import time

import pytest
from fastapi import FastAPI, Request
from fastapi.responses import StreamingResponse

from evals.llm_stub import chat_completions_app
from service.answering.prompts import load_prompt
from tests.fakes import build_fake_engine
from tests.servers import free_port, serve


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


def test_llm_sentences_stream_as_they_are_verified_long_before_the_last_token(fake_index) -> None:
    from service.answering.engine import ChatResult

    app, _ = chat_completions_app(token_delay=0.03, passages=3)
    with serve(app) as base:
        engine = engine_with_llm(fake_index, base + "/v1")
        started = time.monotonic()
        arrivals: list[tuple[float, object]] = []
        for item in engine.chat_stream("What do the glutes do when running?"):
            arrivals.append((time.monotonic() - started, item))
    pieces = [(t, item) for t, item in arrivals if not isinstance(item, ChatResult)]
    total, result = arrivals[-1]
    assert isinstance(result, ChatResult) and result.provenance.mode == "llm"
    assert len(pieces) == 3 and "cures every knee injury" not in result.answer
    assert "".join(p.text for _, p in pieces) == result.answer  # the streamed text is the answer
    # The first sentence came while the model was still generating: at least the words of the later
    # sentences (0.03 s each) were still to be streamed. Buffered to the end, the gap would be ~0.
    later_words = len(result.answer.split()) - len(pieces[0][1].text.split())
    assert total - pieces[0][0] >= 0.5 * 0.03 * later_words > 0
    assert [p.citation.n for _, p in pieces if p.citation] == [c.n for c in result.citations]


def test_fallbacks_are_counted_in_metrics(fake_index) -> None:
    from fastapi.testclient import TestClient

    from service.api.app import create_app
    from tests.conftest import wait_ready

    unreachable = f"http://127.0.0.1:{free_port()}/v1"
    app = create_app(fake_index, engine_factory=lambda _: engine_with_llm(fake_index, unreachable))
    with TestClient(app) as client:
        wait_ready(client)
        assert client.post("/chat", json={"message": "What do the glutes do when running?"}).json()["citations"]
        assert "stride_llm_fallbacks_total 1.0" in client.get("/metrics").text
