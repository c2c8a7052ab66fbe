"""Request and response shapes of the HTTP API (the widget, the evals and outside checks rely on them)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

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


class CitationOut(BaseModel):
    n: int
    chunk_id: str
    article_id: str
    title: str
    section: str
    quote: str
    start: int
    end: int


class ChatResponse(BaseModel):
    answer: str
    abstained: bool
    citations: list[CitationOut]
    provenance: dict


class ArticleSummary(BaseModel):
    id: str
    title: str
    file: str
    publisher: str | None = None
    author: str | None = None
    num_chunks: int
    sha: str
    ingested_at: str | None = None


class Section(BaseModel):
    path: list[str]
    level: int
    start: int
    end: int


class ArticleDetail(ArticleSummary):
    text: str
    sections: list[Section]
