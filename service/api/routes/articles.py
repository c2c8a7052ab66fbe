"""``GET /articles`` and ``GET /articles/{id}``: the indexed articles and their cleaned text."""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path

from ingest.records import ManifestArticle
from service.api.deps import EngineDep
from service.api.schemas import ARTICLE_ID, ArticleDetail, ArticleSummary, error_responses

router = APIRouter(tags=["articles"])


def _summary(aid: str, entry: ManifestArticle) -> ArticleSummary:
    return ArticleSummary(id=aid, **entry.model_dump())


@router.get("/articles", response_model=list[ArticleSummary], responses=error_responses(503))
def list_articles(engine: EngineDep) -> list[ArticleSummary]:
    return [_summary(aid, entry) for aid, entry in sorted(engine.snapshot.manifest.articles.items())]


# The pattern is stated in the schema but checked here, so a bad id gets 400 with the fix, not pydantic's 422.
ArticleId = Annotated[str, Path(description="A lowercase slug, e.g. hip-exercises (see GET /articles).",
                                json_schema_extra={"pattern": ARTICLE_ID, "maxLength": 200})]


@router.get("/articles/{article_id}", response_model=ArticleDetail, responses=error_responses(400, 404, 503))
def get_article(article_id: ArticleId, engine: EngineDep) -> ArticleDetail:
    """The cleaned article text (all citation offsets point into it) and its sections."""
    if not re.match(ARTICLE_ID, article_id) or len(article_id) > 200:
        raise HTTPException(status_code=400, detail="article id must be a lowercase slug such as 'hip-exercises'")
    entry = engine.snapshot.manifest.articles.get(article_id)
    record = engine.article(article_id)
    if entry is None or record is None:
        raise HTTPException(status_code=404, detail=f"unknown article {article_id!r}; see GET /articles")
    return ArticleDetail(**_summary(article_id, entry).model_dump(), text=record.text, sections=record.sections)
