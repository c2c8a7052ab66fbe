"""Typed records of the index format: the version manifest (``index.json``) and one record per
cleaned article (``articles/<id>.json``). Ingest writes them; the service and reports read them."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from ingest.models import Article


class _Record(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


class ManifestArticle(_Record):
    title: str
    file: str
    publisher: str | None = None
    author: str | None = None
    sha: str
    num_chunks: int
    ingested_at: str | None = None  # moves only when the article's content does


class Manifest(_Record):
    format: int
    model: str
    dim: int | None = None
    collection: str
    index_version: str
    built_at: str
    num_chunks: int
    articles: dict[str, ManifestArticle]
    source_fingerprint: str | None = None  # ingest.fingerprint: equal on a re-run = nothing to do


class SectionRecord(_Record):
    path: list[str]
    level: int
    start: int  # offsets of the heading line in ``ArticleRecord.text``
    end: int


class RemovalRecord(_Record):
    rule: str
    text: str


class PlantedRecord(_Record):
    start: int
    end: int
    line: int
    rule: str
    text: str


class ArticleRecord(_Record):
    """A cleaned article as the index stores it; every citation offset points into ``text``."""

    article_id: str
    file: str
    title: str
    publisher: str | None = None
    author: str | None = None
    sha: str
    text: str
    sections: list[SectionRecord]
    removed: list[RemovalRecord] = []
    planted: list[PlantedRecord] = []  # instruction-like sentences (ingest.planted): never answer units
    ingested_at: str | None = None  # from the manifest, filled in when the index is read

    @classmethod
    def of(cls, article: Article) -> ArticleRecord:
        return cls(
            article_id=article.article_id,
            file=article.file,
            title=article.title,
            publisher=article.publisher,
            author=article.author,
            sha=article.sha,
            text=article.text,
            sections=[
                SectionRecord(path=list(s.path), level=s.level, start=s.heading_start, end=s.heading_end)
                for s in article.sections
            ],
            removed=[RemovalRecord(rule=r.rule, text=r.text) for r in article.removed],
            planted=[PlantedRecord(start=p.start, end=p.end, line=p.line, rule=p.rule, text=p.text)
                     for p in article.planted],
        )
