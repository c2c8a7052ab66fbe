"""Request and response shapes of the HTTP API (the widget, the evals and outside checks rely on them)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ingest.records import ManifestArticle, SectionRecord
from service.answering.citations import Citation
from service.answering.provenance import Provenance
from service.feedback.store import MAX_COMMENT_CHARS

ARTICLE_ID = r"^[a-z0-9]+(?:-[a-z0-9]+)*$"


def _clean_text(value: str, what: str) -> str:
    if "\x00" in value:
        raise ValueError(f"{what} must not contain NUL characters")
    if not value.strip():
        raise ValueError(f"{what} must not be empty or whitespace")
    return value


class SearchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    query: str = Field(..., max_length=2000)
    k: int = Field(5, ge=1, le=50)
    article_id: str | None = Field(None, pattern=ARTICLE_ID, max_length=200)
    section: str | None = Field(None, max_length=300)

    @field_validator("query")
    @classmethod
    def _query(cls, v: str) -> str:
        return _clean_text(v, "query")


class SearchResult(BaseModel):
    chunk_id: str
    article_id: str
    title: str
    section: str
    text: str
    score: float


class SearchResponse(BaseModel):
    results: list[SearchResult]


class Message(BaseModel):
    model_config = ConfigDict(extra="forbid")
    role: Literal["user", "assistant"]
    content: str = Field(..., max_length=8000)

    @field_validator("content")
    @classmethod
    def _content(cls, v: str) -> str:
        if "\x00" in v:
            raise ValueError("history content must not contain NUL characters")
        return v


class ChatRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    message: str = Field(..., max_length=2000)
    history: list[Message] = Field(default_factory=list, max_length=40)

    @field_validator("message")
    @classmethod
    def _message(cls, v: str) -> str:
        return _clean_text(v, "message")


class ChatResponse(BaseModel):
    answer: str
    abstained: bool
    citations: list[Citation]
    provenance: Provenance


class FeedbackRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    query_id: str = Field(..., min_length=1, max_length=64)
    rating: Literal["up", "down"]
    comment: str | None = Field(None, max_length=MAX_COMMENT_CHARS)

    @field_validator("comment")
    @classmethod
    def _comment(cls, v: str | None) -> str | None:
        if v is not None and "\x00" in v:
            raise ValueError("comment must not contain NUL characters")
        return v


class FeedbackResponse(BaseModel):
    id: int


class ArticleSummary(ManifestArticle):
    """What the index manifest says about one article, with its id."""

    id: str


class ArticleDetail(ArticleSummary):
    text: str
    sections: list[SectionRecord]
