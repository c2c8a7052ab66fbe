"""Order retrieval candidates. The default needs no extra model: a chunk's fused score plus its best
single sentence gives a hand-set order, which weights learned on the dev split then refine
(``ranking.py``). A CrossEncoder can be plugged in instead."""

from __future__ import annotations

from typing import Protocol

import numpy as np

from service.answering.query import Query
from service.answering.ranking import RankingModel, ranking_features
from service.answering.retrieval import Hit, SearchIndex


class Reranker(Protocol):
    name: str

    def rerank(self, query: Query, qvec: np.ndarray, hits: list[Hit], index: SearchIndex) -> list[Hit]: ...


class SentenceReranker:
    """Rewards chunks that contain one sentence that really answers, rather than many loosely
    related words."""

    name = "sentence-maxsim"

    def __init__(self, weight: float) -> None:
        self.weight = weight

    def rerank(self, query: Query, qvec: np.ndarray, hits: list[Hit], index: SearchIndex) -> list[Hit]:
        return self.order(hits, [index.sentence_sims(h.index, qvec) for h in hits])

    def order(self, hits: list[Hit], sentence_sims: list[np.ndarray]) -> list[Hit]:
        for h, sims in zip(hits, sentence_sims, strict=True):
            if len(sims):
                h.best_sentence = int(np.argmax(sims))
                h.best_sentence_cos = float(sims[h.best_sentence])
            h.score = h.hand_set = h.fused + self.weight * h.best_sentence_cos
        return sorted(hits, key=lambda h: -h.score)


class LearnedReranker:
    """The hand-set order refined by learned weights (``ranking.RankingModel``): a chunk's score becomes
    the fitted model's 0-1 output. The fit weighs the rare chunks that hold gold evidence as much as all
    the others together, so it orders chunks; it is not a calibrated probability."""

    name = "learned"

    def __init__(self, model: RankingModel, base: SentenceReranker) -> None:
        self.model = model
        self.base = base

    def rerank(self, query: Query, qvec: np.ndarray, hits: list[Hit], index: SearchIndex) -> list[Hit]:
        if not hits:
            return hits
        sims = {h.index: index.sentence_sims(h.index, qvec) for h in hits}
        ordered = self.base.order(hits, [sims[h.index] for h in hits])
        x = ranking_features(query, ordered, [sims[h.index] for h in ordered])
        for h, p in zip(ordered, self.model.probability(x), strict=True):
            h.score = float(p)
        return sorted(ordered, key=lambda h: -h.score)


class CrossEncoderReranker:
    """Optional: a sentence-transformers CrossEncoder, when one is configured (STRIDE_RERANKER_MODEL)."""

    name = "cross-encoder"

    def __init__(self, model_name: str, fallback: SentenceReranker) -> None:
        from sentence_transformers import CrossEncoder

        from ingest.embedding import check_model_available

        self.model = CrossEncoder(check_model_available(model_name), device="cpu")
        self.fallback = fallback

    def rerank(self, query: Query, qvec: np.ndarray, hits: list[Hit], index: SearchIndex) -> list[Hit]:
        hits = self.fallback.rerank(query, qvec, hits, index)  # keeps best-sentence info for answering
        scores = self.model.predict([(query.text, h.chunk.text) for h in hits])
        for h, s in zip(hits, scores, strict=True):
            h.extra["cross_encoder"] = float(s)
            h.score = float(s)
        return sorted(hits, key=lambda h: -h.score)
