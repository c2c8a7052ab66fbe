"""Request and response shapes of the HTTP API (the widget, the evals and outside checks rely on them)."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from ingest.records import ManifestArticle, SectionRecord
from service.answering.citations import Citation
from service.answering.provenance import Provenance
from service.coverage.marks import MAX_NOTE_CHARS
from service.feedback.store import MAX_COMMENT_CHARS

ARTICLE_ID = r"^[a-z0-9]+(?:-[a-z0-9]+)*$"
# The text rules as patterns, so the OpenAPI schema states them; the validators check the same patterns
# (with friendlier messages than "should match pattern"; the field's name comes with pydantic's location).
NO_NUL = r"^[^\x00]*$"
NOT_BLANK = r"^[^\x00]*[^\s\x00][^\x00]*$"  # no NUL, and at least one character that is not whitespace


def _no_nul(value: str) -> str:
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


def _not_blank(value: str) -> str:
    if not re.fullmatch(NOT_BLANK, _no_nul(value)):
        raise ValueError("must not be empty or whitespace")
    return value


Text = Annotated[str, AfterValidator(_no_nul), Field(json_schema_extra={"pattern": NO_NUL})]
NonBlankText = Annotated[str, AfterValidator(_not_blank), Field(json_schema_extra={"pattern": NOT_BLANK})]


class ErrorBody(BaseModel):
    """Every 4xx and 5xx answer."""

    detail: str = Field(..., description="One line: what went wrong and, where there is one, the fix.")


_RETRY_AFTER = {"Retry-After": {"description": "Seconds to wait before trying again.",
                                "schema": {"type": "integer", "minimum": 1}}}
_ERRORS: dict[int, tuple[str, bool]] = {
    400: ("The request could not be read: a body that is not UTF-8, or an article id that is not a slug.", False),
    404: ("No such article or query id.", False),
    413: ("The request body is over 256 KB (counted on the bytes received).", False),
    422: ("The request body is not valid JSON or breaks a rule of the schema.", False),
    429: ("This client sent more requests than its rate limit allows.", True),
    503: ("Not ready yet, answering as many questions as it can, or the store is unavailable.", True),
}


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for the error statuses a route can answer with, all ``{"detail": str}``."""
    return {
        code: {"model": ErrorBody, "description": _ERRORS[code][0], **({"headers": _RETRY_AFTER}
                                                                         if _ERRORS[code][1] else {})}
        for code in codes
    }


class SearchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    query: NonBlankText = Field(..., max_length=2000)
    k: int = Field(5, ge=1, le=50)
    article_id: str | None = Field(None, pattern=ARTICLE_ID, max_length=200)
    section: Text | None = Field(None, max_length=300)


# /search and the MCP search tool report the same score.
SCORE_DESCRIPTION = ("How well the passage answers, higher is better: the learned ranking's 0-1 score (relative, "
                     "not a calibrated probability), or a CrossEncoder's own score when one is configured.")


class SearchResult(BaseModel):
    chunk_id: str
    article_id: str
    title: str
    section: str
    text: str
    score: float = Field(description=SCORE_DESCRIPTION)


class SearchResponse(BaseModel):
    results: list[SearchResult]


class Message(BaseModel):
    model_config = ConfigDict(extra="forbid")
    role: Literal["user", "assistant"]
    content: Text = Field(..., max_length=8000)


class ChatRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    message: NonBlankText = Field(..., max_length=2000)
    history: list[Message] = Field(default_factory=list, max_length=40)


class ChatResponse(BaseModel):
    answer: str = Field(description="Plain text with [n] citation markers; a list's lead-in ends a line and each "
                                    "item opens one after '- ' (a step shows its own number).")
    abstained: bool
    citations: list[Citation]
    provenance: Provenance
    suggestions: list[str] = Field(
        default_factory=list, description="With a decline: the closest topics the articles do cover, to ask about.")


class FeedbackRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    query_id: Text = Field(..., min_length=1, max_length=64)
    rating: Literal["up", "down"]
    comment: Text | None = Field(None, max_length=MAX_COMMENT_CHARS)


class FeedbackResponse(BaseModel):
    id: int


class Readiness(BaseModel):
    status: Literal["ready", "loading", "error", "unavailable"]
    index_version: str | None = Field(None, description="Set once ready.")
    startup_seconds: float | None = Field(None, description="Set once ready.")
    detail: str | None = Field(None, description="Why the index or model could not load (status error).")
    failed_version: str | None = Field(
        None, description="A newer published version that could not be loaded; index_version keeps serving."
    )
    reload_error: str | None = Field(None, description="Why failed_version could not be loaded.")


class ArticleSummary(ManifestArticle):
    """What the index manifest says about one article, with its id."""

    id: str


class ArticleDetail(ArticleSummary):
    text: str
    sections: list[SectionRecord]


class GapMarkRequest(BaseModel):
    """What the content team did about a gap cluster; "open" removes the mark."""

    model_config = ConfigDict(extra="forbid")
    status: Literal["planned", "written", "open"]
    note: Text | None = Field(None, max_length=MAX_NOTE_CHARS)


class GapMarkResponse(BaseModel):
    cluster_id: str
    status: Literal["planned", "written", "open"]
    note: str | None
    marked_at: str | None = Field(None, description="UTC; None when the mark was removed.")
    index_version: str = Field(description="The index served when marked: written clusters are checked after it.")
