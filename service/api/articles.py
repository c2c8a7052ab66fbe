from __future__ import annotations

import re

from fastapi import APIRouter, HTTPException

from service.api.deps import EngineDep
from service.schemas import ARTICLE_ID, ArticleDetail, ArticleSummary

router = APIRouter(tags=["articles"])


def _summary(aid: str, meta: dict) -> dict:
    return {"id": aid, "title": meta["title"], "file": meta["file"], "publisher": meta.get("publisher"),
            "author": meta.get("author"), "num_chunks": meta["num_chunks"], "sha": meta["sha"],
            "ingested_at": meta.get("ingested_at")}


@router.get("/articles", response_model=list[ArticleSummary])
def list_articles(engine: EngineDep) -> list[dict]:
    return [_summary(aid, meta) for aid, meta in sorted(engine.snapshot.manifest["articles"].items())]


@router.get("/articles/{article_id}", response_model=ArticleDetail)
def get_article(article_id: str, engine: EngineDep) -> dict:
    """The cleaned article text (all citation offsets point into it) and its sections."""
    if not re.match(ARTICLE_ID, article_id) or len(article_id) > 200:
        raise HTTPException(status_code=400, detail="article id must be a lowercase slug such as 'hip-exercises'")
    meta = engine.snapshot.manifest["articles"].get(article_id)
    if meta is None:
        raise HTTPException(status_code=404, detail=f"unknown article {article_id!r}; see GET /articles")
    record = engine.snapshot.articles[article_id]
    return {**_summary(article_id, meta), "text": record["text"], "sections": record["sections"]}
