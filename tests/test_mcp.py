"""The MCP server through the SDK's own client: streamable HTTP at /mcp on a served app (fake embedder), and
stdio through a real `stride mcp` process (the real model)."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx
import httpx2
import pytest
from mcp import Client, ClientSession, MCPError, StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.types import CallToolResult, TextContent, TextResourceContents
from typer.testing import CliRunner

from ingest.pipeline import run_ingest
from ingest.settings import Settings
from service.answering.engine import Engine
from service.api.app import create_app
from service.cli import Wiring, app
from service.mcp.server import build_mcp_server
from tests.fakes import build_fake_engine, fake_embeddings_factory
from tests.servers import serve
from tests.test_planted import ARTICLE as PLANTED_ARTICLE
from tests.test_planted import PLANTED

TOOLS = {"ask_stride", "search_articles", "list_articles"}
GLUTES = "What do the glutes do when running?"


@contextmanager
def served_mcp(settings: Settings, engine_factory: Callable[[Settings], Engine] = build_fake_engine,
               ready_path: str = "/readyz") -> Iterator[str]:
    """The app served by a real uvicorn (tests.servers.serve); yields the URL of its /mcp endpoint."""
    with serve(create_app(settings, engine_factory=engine_factory), ready_path=ready_path) as base:
        yield base + "/mcp"


@pytest.fixture
def mcp_url(fake_settings: Settings) -> Iterator[str]:
    """/mcp on a real uvicorn serving the app with the fake embedder, once ready."""
    with served_mcp(fake_settings) as url:
        yield url


@asynccontextmanager
async def http_session(url: str, headers: dict[str, str] | None = None) -> AsyncIterator[ClientSession]:
    async with (
        httpx2.AsyncClient(headers=headers, timeout=30) as http,
        streamable_http_client(url, http_client=http) as (read, write),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        yield session


def run(url: str, check: Callable[[ClientSession], Awaitable[Any]], headers: dict[str, str] | None = None) -> Any:
    async def main() -> Any:
        async with http_session(url, headers) as session:
            return await check(session)

    return anyio.run(main)


def payload(result: CallToolResult) -> dict[str, Any]:
    """A successful call's structured result, which the text content carries too (for older clients)."""
    assert not result.is_error, result.content
    assert result.structured_content is not None
    block = result.content[0]
    assert isinstance(block, TextContent) and json.loads(block.text) == result.structured_content
    return result.structured_content


def error_text(result: CallToolResult) -> str:
    assert result.is_error
    return " ".join(b.text for b in result.content if isinstance(b, TextContent))


async def article_text(session: ClientSession, article_id: str) -> str:
    read = await session.read_resource(f"stride://articles/{article_id}")
    (contents,) = read.contents
    assert isinstance(contents, TextResourceContents) and contents.mime_type == "text/plain"
    return contents.text


# --- streamable HTTP (fast tier: the fake embedder) -------------------------------------------------------

def test_http_lists_the_three_tools_with_their_input_schemas(mcp_url: str) -> None:
    async def check(session: ClientSession) -> Any:
        assert session.server_info is not None and session.server_info.name == "stride"
        return (await session.list_tools()).tools

    tools = {t.name: t for t in run(mcp_url, check)}
    assert set(tools) == TOOLS
    for tool in tools.values():
        assert tool.input_schema["type"] == "object"
        assert "only" in (tool.description or "").lower() or tool.name == "search_articles"
    ask = tools["ask_stride"].input_schema
    assert ask["required"] == ["question"] and set(ask["properties"]) == {"question", "history"}
    search = tools["search_articles"].input_schema
    assert search["required"] == ["query"] and set(search["properties"]) == {"query", "k", "article_id"}
    assert (search["properties"]["k"]["minimum"], search["properties"]["k"]["maximum"]) == (1, 50)
    assert tools["list_articles"].input_schema.get("properties", {}) == {}
    assert "cite" in (tools["ask_stride"].description or "").lower()


def test_http_ask_stride_cites_quotes_found_verbatim_in_the_article_resources(mcp_url: str) -> None:
    async def check(session: ClientSession) -> Any:
        body = payload(await session.call_tool("ask_stride", {"question": GLUTES}))
        texts = {c["article_id"]: await article_text(session, c["article_id"]) for c in body["citations"]}
        follow = payload(await session.call_tool("ask_stride", {
            "question": "How do I strengthen them?",
            "history": [{"role": "user", "content": GLUTES}, {"role": "assistant", "content": body["answer"]}]}))
        return body, texts, follow

    body, texts, follow = run(mcp_url, check)
    assert set(body) == {"answer", "citations", "abstained"}
    assert not body["abstained"] and body["citations"]
    for c in body["citations"]:
        assert set(c) == {"n", "chunk_id", "article_id", "title", "section", "quote", "start", "end"}
        assert f"[{c['n']}]" in body["answer"]
        assert c["quote"] in texts[c["article_id"]]
        assert texts[c["article_id"]][c["start"] : c["end"]] == c["quote"]
    assert "glute" in body["answer"].lower()
    assert not follow["abstained"] and follow["citations"]


def test_http_search_list_and_resources(mcp_url: str) -> None:
    async def check(session: ClientSession) -> Any:
        search = payload(await session.call_tool("search_articles", {"query": "hamstrings hip extension", "k": 3}))
        one = payload(await session.call_tool("search_articles", {
            "query": "glutes", "k": 5, "article_id": "does-running-help-hamstrings"}))
        listing = payload(await session.call_tool("list_articles", {}))
        resources = (await session.list_resources()).resources
        templates = (await session.list_resource_templates()).resource_templates
        texts = {r["article_id"]: await article_text(session, r["article_id"]) for r in search["results"]}
        return search, one, listing, resources, templates, texts

    search, one, listing, resources, templates, texts = run(mcp_url, check)
    results = search["results"]
    assert len(results) == 3
    assert set(results[0]) == {"chunk_id", "article_id", "title", "section", "text", "score"}
    assert all(r["text"] in texts[r["article_id"]] for r in results)
    assert one["results"] and {r["article_id"] for r in one["results"]} == {"does-running-help-hamstrings"}

    articles = {a["id"]: a for a in listing["articles"]}
    assert len(articles) == 5
    assert articles["can-runners-build-muscle"]["title"] == "Can Runners Build Muscle?"
    assert {"id", "title", "publisher", "author", "uri"} <= set(articles["can-runners-build-muscle"])
    assert {str(r.uri) for r in resources} == {f"stride://articles/{a}" for a in articles}
    assert all(r.mime_type == "text/plain" and r.title == articles[r.name]["title"] for r in resources)
    assert [t.uri_template for t in templates] == ["stride://articles/{article_id}"]


BAD_CALLS = [
    ("ask_stride", {"question": ""}, "question"),
    ("ask_stride", {"question": "   \n "}, "empty or whitespace"),
    ("ask_stride", {"question": "x" * 2001}, "2000"),
    ("ask_stride", {"question": "hi\x00there"}, "NUL"),
    ("ask_stride", {"question": "ok", "history": [{"role": "system", "content": "x"}]}, "role"),
    ("ask_stride", {}, "question"),
    ("search_articles", {"query": "glutes", "k": 0}, "k"),
    ("search_articles", {"query": "glutes", "k": 51}, "k"),
    ("search_articles", {"query": "glutes", "article_id": "no-such-article"}, "list_articles"),
    ("search_articles", {"query": "glutes", "article_id": "Not A Slug"}, "article_id"),
    ("no_such_tool", {}, "no_such_tool"),
]


def test_http_bad_arguments_are_tool_errors_and_the_server_keeps_answering(mcp_url: str) -> None:
    async def check(session: ClientSession) -> Any:
        errors = [(says, error_text(await session.call_tool(name, args))) for name, args, says in BAD_CALLS]
        with pytest.raises(MCPError, match="unknown article"):
            await session.read_resource("stride://articles/no-such-article")
        after = payload(await session.call_tool("list_articles", {}))
        return errors, after

    errors, after = run(mcp_url, check)
    for says, text in errors:
        assert says in text, (says, text)
    assert len(after["articles"]) == 5


def test_http_route_is_exactly_mcp_and_leaves_the_rest_of_the_api_alone(mcp_url: str) -> None:
    base = mcp_url.removesuffix("/mcp")
    init = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "0"}}}
    r = httpx.post(mcp_url, json=init, headers={"Accept": "application/json, text/event-stream"},
                   follow_redirects=False)
    assert r.status_code == 200, r.text
    assert r.json()["result"]["serverInfo"]["name"] == "stride"
    assert httpx.get(mcp_url, timeout=5).status_code == 405  # stateless: no standalone stream to hold open
    assert 'route="/mcp"' in httpx.get(base + "/metrics").text  # counted under its own path, not as unmatched
    assert "/mcp" not in httpx.get(base + "/openapi.json").json()["paths"]
    assert httpx.get(base + "/readyz").json()["status"] == "ready"
    assert httpx.post(base + "/search", json={"query": "glutes", "k": 2}).status_code == 200


def test_stride_mcp_without_an_index_is_one_line_and_writes_nothing_to_stdout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STRIDE_DATA_DIR", str(tmp_path / "data"))
    result = CliRunner().invoke(app, ["mcp"], obj=Wiring(embeddings_factory=fake_embeddings_factory()))
    assert result.exit_code == 1
    assert result.stdout == ""  # stdout is the protocol's alone
    assert result.stderr.strip().count("\n") == 0 and "run `stride ingest`" in result.stderr


def test_http_needs_a_key_when_keys_are_set(fake_settings: Settings) -> None:
    settings = fake_settings.model_copy(update={"api_keys": ["k"]})
    with served_mcp(settings) as url:
        refused = httpx.post(url, json={})
        assert refused.status_code == 401 and "STRIDE_API_KEYS" in refused.json()["detail"]
        for headers in (None, {"Authorization": "Bearer wrong"}):
            with pytest.raises(ExceptionGroup) as failed:  # the SDK's client: the connection fails
                run(url, lambda s: s.list_tools(), headers=headers)
            assert failed.group_contains(MCPError, match="error response")
        tools = run(url, lambda s: s.list_tools(), headers={"Authorization": "Bearer k"})
        assert {t.name for t in tools.tools} == TOOLS


def test_http_tools_say_stride_is_starting_while_the_engine_loads(fake_settings: Settings) -> None:
    release = threading.Event()

    def slow_engine(settings: Settings) -> Engine:
        release.wait(30)
        return build_fake_engine(settings)

    async def check(session: ClientSession) -> Any:
        return await session.call_tool("ask_stride", {"question": GLUTES})

    try:
        with served_mcp(fake_settings, slow_engine, ready_path="/healthz") as url:
            assert "Stride is starting" in error_text(run(url, check))
            release.set()
    finally:
        release.set()


def test_instruction_like_text_is_blanked_in_passages_and_resources(settings: Settings) -> None:
    """An MCP client hands these texts to an LLM: text ingest flagged as planted never reaches it."""
    (settings.corpus_dir / "calf-strength.md").write_text(PLANTED_ARTICLE, encoding="utf-8")
    run_ingest(settings, embeddings_factory=fake_embeddings_factory())
    engine = build_fake_engine(settings)
    record = engine.article("calf-strength")
    assert record is not None and PLANTED in record.text

    async def check() -> Any:
        async with Client(build_mcp_server(lambda: engine)) as client:
            search = await client.call_tool("search_articles", {"query": "buy MegaCalf Pro calf raises",
                                                                "article_id": "calf-strength"})
            read = await client.read_resource("stride://articles/calf-strength")
            return payload(search), read.contents[0]

    search, contents = anyio.run(check)
    assert search["results"] and all("MegaCalf" not in r["text"] for r in search["results"])
    assert any("Bent-knee calf raises work the soleus" in r["text"] for r in search["results"])
    assert isinstance(contents, TextResourceContents)
    assert "MegaCalf" not in contents.text and "Bent-knee calf raises" in contents.text
    assert len(contents.text) == len(record.text)  # blanked, not cut: citation offsets still index it


# --- stdio: a real `stride mcp` process (slow tier: the real model) --------------------------------------

def test_stdio_stride_mcp_answers_with_citations(settings: Settings, stride_env: dict[str, str]) -> None:
    stride = str(Path(sys.executable).with_name("stride"))
    done = subprocess.run([stride, "ingest", "--corpus", str(settings.corpus_dir), "--json"],
                          env=stride_env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    stray: list[Any] = []  # anything on stdout that is not the protocol arrives here as an exception

    async def on_message(message: Any) -> None:
        if isinstance(message, Exception):
            stray.append(message)

    async def main() -> Any:
        params = StdioServerParameters(command=stride, args=["mcp"], env=stride_env)
        with anyio.fail_after(240):
            async with stdio_client(params) as (read, write), ClientSession(read, write,
                                                                            message_handler=on_message) as session:
                await session.initialize()
                tools = {t.name for t in (await session.list_tools()).tools}
                body = payload(await session.call_tool("ask_stride", {"question": GLUTES}))
                texts = {c["article_id"]: await article_text(session, c["article_id"]) for c in body["citations"]}
                bad = await session.call_tool("search_articles", {"query": "glutes", "k": 99})
                return tools, body, texts, bad

    tools, body, texts, bad = anyio.run(main)
    assert tools == TOOLS
    assert not body["abstained"] and body["citations"]
    assert all(c["quote"] in texts[c["article_id"]] for c in body["citations"])
    assert "k" in error_text(bad)
    assert not stray
