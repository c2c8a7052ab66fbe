"""``POST /search``: ranked verbatim passages."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException

from service.api.deps import EngineDep
from service.api.schemas import SearchRequest, SearchResponse, SearchResult, error_responses
from service.api.throttle import SearchLimit

router = APIRouter(tags=["search"])


@router.post("/search", response_model=SearchResponse, responses=error_responses(400, 404, 413, 422, 429, 503))
def search(req: SearchRequest, _: SearchLimit, engine: EngineDep) -> SearchResponse:
    """Ranked passages (verbatim chunk text) for a query, optionally within one article or section."""
    if req.article_id and engine.article(req.article_id) is None:
        raise HTTPException(status_code=404, detail=f"unknown article_id {req.article_id!r}; see GET /articles")
    hits = engine.search(req.query, k=req.k, article_id=req.article_id, section=req.section)
    return SearchResponse(
        results=[
            SearchResult(chunk_id=h.chunk_id, article_id=h.chunk.article_id, title=h.chunk.title,
                         section=h.chunk.section_label, text=h.chunk.text, score=round(h.score, 6))
            for h in hits
        ]
    )
