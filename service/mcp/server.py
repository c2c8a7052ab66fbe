"""``build_mcp_server(engine_provider)``: Stride as an MCP server (the official ``mcp`` SDK's ``MCPServer``).

Tools: ``ask_stride`` (a cited answer or a plain decline), ``search_articles`` (ranked passages) and
``list_articles``; every article is a ``text/plain`` resource at ``stride://articles/{id}``. Arguments
follow the HTTP API's rules (``service.api.schemas``); a bad one is a tool error (``isError``) naming
the rule, never a crash. The engine comes from ``engine_provider``, so the HTTP server can answer while
the model is still loading ("Stride is starting").

Instruction-like sentences that ingest flagged in an article (``ArticleRecord.planted``) are blanked
with spaces in what the tools and resources return: an MCP client hands these texts to an LLM, and
such text is never shown to one. Offsets stay as they are, so citations still index the article text.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Annotated, Any, TypeVar

from mcp import types
from mcp.server import MCPServer
from mcp.server.mcpserver.exceptions import ResourceError, ResourceNotFoundError, ToolError
from mcp.server.streamable_http_manager import StreamableHTTPASGIApp
from mcp.server.transport_security import TransportSecuritySettings
from mcp.shared.exceptions import MCPError
from pydantic import BaseModel, Field, ValidationError
from starlette.routing import Match, Route
from starlette.types import ASGIApp, Scope

from service.answering.citations import Citation
from service.answering.engine import Engine
from service.answering.query import Turn
from service.api.schemas import ARTICLE_ID, SCORE_DESCRIPTION, ChatRequest, Message, SearchRequest

STARTING = "Stride is starting; try again shortly"
ARTICLE_URI = "stride://articles/{article_id}"
INSTRUCTIONS = (
    "Stride answers questions about the muscles used in running and strength training for runners, ONLY "
    "from a fixed set of articles, never from general knowledge. Use ask_stride for a short answer whose "
    "every sentence ends with an [n] marker; each citation quotes the exact article passage behind it. "
    "Pass the quotes on with the answer rather than restating them from memory. When ask_stride declines "
    "(abstained: true), the articles do not cover the question: say so instead of answering anyway. "
    "search_articles returns verbatim passages; list_articles and the stride://articles/{id} resources "
    "give the articles themselves."
)


class EngineUnavailable(Exception):
    """Raised by an engine provider that cannot give an engine; its message is shown to the client."""


EngineProvider = Callable[[], Engine | None]
M = TypeVar("M", bound=BaseModel)


class Passage(BaseModel):
    chunk_id: str
    article_id: str
    title: str
    section: str = Field(description="The heading trail, 'A > B'.")
    text: str = Field(description="Verbatim article text.")
    score: float = Field(description=SCORE_DESCRIPTION)


class SearchResults(BaseModel):
    results: list[Passage]


class Answer(BaseModel):
    answer: str = Field(description="The answer; every sentence ends with [n] markers naming its citations.")
    citations: list[Citation] = Field(description="The passage behind each [n]: its verbatim quote and offsets.")
    abstained: bool = Field(description="True when the articles do not answer the question and Stride declined.")


class ArticleInfo(BaseModel):
    id: str
    title: str
    publisher: str | None = None
    author: str | None = None
    uri: str = Field(description="The article's resource: its full cleaned text.")


class ArticleList(BaseModel):
    articles: list[ArticleInfo]


def _blank(text: str, offset: int, spans: Sequence[tuple[int, int]]) -> str:
    """``text`` (which starts at ``offset`` in its article) with the article spans replaced by spaces."""
    for start, end in spans:
        a, b = max(start - offset, 0), min(end - offset, len(text))
        if a < b:
            text = text[:a] + " " * (b - a) + text[b:]
    return text


def _planted(engine: Engine, article_id: str) -> list[tuple[int, int]]:
    record = engine.article(article_id)
    return [(p.start, p.end) for p in record.planted] if record else []


def _checked(description: str, **limits: Any) -> Any:
    """A tool parameter whose limits the input schema states for clients, while the API's request model
    (``_validated``) checks them: one set of rules, and a broken one is a one-line error in the API's words."""
    return Field(description=description, json_schema_extra=limits or None)


def _validated(model: type[M], names: dict[str, str], **values: Any) -> M:
    """``model(**values)``, or a ToolError listing each broken rule in one line, with the tool's own names."""
    try:
        return model(**values)
    except ValidationError as err:
        problems = []
        for e in err.errors():
            where = ".".join(names.get(str(part), str(part)) for part in e["loc"])
            msg = e["msg"].removeprefix("Value error, ")
            problems.append(f"{where}: {msg}")
        raise ToolError("; ".join(problems)) from None


class _StrideMCP(MCPServer[Any]):
    """``MCPServer`` whose resources/list names every article of the loaded index (known only once it loads)."""

    def __init__(self, engine: Callable[[], Engine], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._engine = engine

    async def list_resources(self) -> list[types.Resource]:
        try:
            engine = self._engine()
        except ToolError as err:  # not ready: a protocol error, so a client does not cache an empty list
            raise MCPError(code=types.INTERNAL_ERROR, message=str(err)) from None
        return [
            types.Resource(
                uri=ARTICLE_URI.format(article_id=aid), name=aid, title=art.title, mime_type="text/plain",
                description=f"{art.title}: the article's cleaned text"
                + "".join(f"; {label} {value}" for label, value in (("by", art.author), ("from", art.publisher))
                          if value)
                + ". Citation offsets (start, end) index this text.",
            )
            for aid, art in sorted(engine.snapshot.manifest.articles.items())
        ]


def build_mcp_server(engine_provider: EngineProvider) -> MCPServer[Any]:
    """The MCP server over whatever engine ``engine_provider`` gives: ``None`` (or ``EngineUnavailable``)
    while it is not loaded, which tools and resources report as an error instead of crashing."""

    def engine() -> Engine:
        try:
            loaded = engine_provider()
        except EngineUnavailable as err:
            raise ToolError(str(err)) from None
        if loaded is None:
            raise ToolError(STARTING)
        return loaded

    server = _StrideMCP(engine, name="stride", title="Stride", version="0.1.0", instructions=INSTRUCTIONS,
                        log_level="WARNING")

    @server.tool(
        title="Ask Stride",
        description=(
            "Answer a question about running muscles or strength training for runners, ONLY from Stride's "
            "articles. Returns a short answer whose sentences end with [n] markers, and for each n a citation "
            "with the verbatim quote, article and section it comes from; when you relay the answer, cite those "
            "passages. When abstained is true the articles do not answer it: tell the user so, do not answer "
            "from general knowledge. For a follow-up question pass the earlier turns as history."
        ),
        annotations=types.ToolAnnotations(read_only_hint=True, open_world_hint=False),
    )
    def ask_stride(
        question: Annotated[str, _checked("The question, as the user asked it.", minLength=1, maxLength=2000)],
        history: Annotated[
            list[Message] | None,
            _checked("Earlier turns of this conversation, oldest first (for follow-ups).", maxItems=40),
        ] = None,
    ) -> Answer:
        req = _validated(ChatRequest, {"message": "question"}, message=question, history=history or [])
        result = engine().chat(req.message, [Turn(m.role, m.content) for m in req.history])
        return Answer(answer=result.answer, citations=result.citations, abstained=result.abstained)

    @server.tool(
        title="Search Stride's articles",
        description=(
            "Ranked passages from Stride's articles about running muscles and strength training, each the "
            "verbatim article text with its article, section and score. Use it to find or quote what the "
            "articles say; cite the passages you use (title and section). Optionally restrict the search to one "
            "article (its id from list_articles)."
        ),
        annotations=types.ToolAnnotations(read_only_hint=True, open_world_hint=False),
    )
    def search_articles(
        query: Annotated[str, _checked("What to look for.", minLength=1, maxLength=2000)],
        k: Annotated[int, _checked("How many passages.", minimum=1, maximum=50)] = 5,
        article_id: Annotated[
            str | None, _checked("Only this article (an id from list_articles).", pattern=ARTICLE_ID, maxLength=200)
        ] = None,
    ) -> SearchResults:
        req = _validated(SearchRequest, {}, query=query, k=k, article_id=article_id)
        loaded = engine()
        if req.article_id and loaded.article(req.article_id) is None:
            raise ToolError(f"unknown article_id {req.article_id!r}; call list_articles for the ids")
        hits = loaded.search(req.query, k=req.k, article_id=req.article_id, section=None)
        return SearchResults(results=[
            Passage(chunk_id=h.chunk_id, article_id=h.chunk.article_id, title=h.chunk.title,
                    section=h.chunk.section_label, score=round(h.score, 6),
                    text=_blank(h.chunk.text, h.chunk.start, _planted(loaded, h.chunk.article_id)))
            for h in hits
        ])

    @server.tool(
        title="List Stride's articles",
        description=(
            "The articles Stride answers from (the only sources it uses): id, title, publisher and author where "
            "known, and the resource URI of each article's full text."
        ),
        annotations=types.ToolAnnotations(read_only_hint=True, open_world_hint=False),
    )
    def list_articles() -> ArticleList:
        manifest = engine().snapshot.manifest
        return ArticleList(articles=[
            ArticleInfo(id=aid, title=a.title, publisher=a.publisher, author=a.author,
                        uri=ARTICLE_URI.format(article_id=aid))
            for aid, a in sorted(manifest.articles.items())
        ])

    @server.resource(ARTICLE_URI, name="article", title="A Stride article", mime_type="text/plain",
                     description="One article's cleaned text; citation offsets (start, end) index it.")
    def article(article_id: str) -> str:
        try:
            loaded = engine()
        except ToolError as err:
            raise ResourceError(str(err)) from None
        record = loaded.article(article_id)
        if record is None:
            raise ResourceNotFoundError(f"unknown article {article_id!r}; see resources/list or list_articles")
        return _blank(record.text, 0, _planted(loaded, article_id))

    return server


class EndpointRoute(Route):
    """A route to an ASGI app at exactly ``path`` (a Mount would answer ``POST /mcp`` with a redirect to
    ``/mcp/``), POST only: a stateless server has no standalone GET stream and no session to DELETE, so those
    get 405 as the spec allows. It sets ``scope["route"]`` as Starlette's router does for its routes, so the
    app's request metrics label it by its path rather than as unmatched."""

    def __init__(self, path: str, app: ASGIApp) -> None:
        super().__init__(path, app, methods=["POST"], include_in_schema=False)

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        match, child = super().matches(scope)
        return match, {**child, "route": self} if match is not Match.NONE else child


def streamable_http_endpoint(server: MCPServer[Any]) -> ASGIApp:
    """The ASGI app that serves ``server`` over streamable HTTP at whatever path it is routed to: stateless,
    JSON responses. Its session manager must run for the app's lifetime (``server.session_manager.run()``).

    Host/Origin (DNS-rebinding) checks are off: the endpoint sits behind the same Bearer keys as ``/v1``,
    and a fixed host list would refuse a server reached by its public name or through a proxy."""
    server.streamable_http_app(
        stateless_http=True, json_response=True,
        transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False),
    )
    return StreamableHTTPASGIApp(server.session_manager)
