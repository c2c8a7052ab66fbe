"""Order retrieval candidates. The default needs no extra model: a chunk is as good as its fused
score plus its best single sentence. A CrossEncoder can be plugged in instead."""

from __future__ import annotations

from typing import Protocol

import numpy as np

from service.answering.query import Query
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
        for h in hits:
            sims = index.sentence_sims(h.index, qvec)
            if len(sims):
                h.best_sentence = int(np.argmax(sims))
                h.best_sentence_cos = float(sims[h.best_sentence])
            h.score = h.fused + self.weight * h.best_sentence_cos
        return sorted(hits, key=lambda h: -h.score)


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
