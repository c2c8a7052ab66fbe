"""Stride's question answering: one Engine per process, built once from the committed index."""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from ingest.embedding import SentenceEmbeddings, load_embeddings
from ingest.lexicon import Lexicon
from ingest.settings import Settings
from ingest.store import COLLECTION, IndexSnapshot, open_chroma, open_index
from service.abstain import Calibration, confidence
from service.answer import AnswerParams, Citation, compose, referral_unit, render
from service.guard import is_injection
from service.query import Query, Turn, analyse
from service.retrieval import CrossEncoderReranker, Hit, Reranker, RetrievalParams, SearchIndex, SentenceReranker

log = logging.getLogger(__name__)

DECLINE = "The articles don't cover that, so I can't answer it from them."
OUT_OF_SCOPE = (
    "I can only answer questions about running muscles and strength training for runners, "
    "from Stride's articles."
)


@dataclass
class ChatResult:
    answer: str
    abstained: bool
    citations: list[Citation]
    provenance: dict[str, Any]
    hits: list[Hit] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "answer": self.answer,
            "abstained": self.abstained,
            "citations": [asdict(c) for c in self.citations],
            "provenance": self.provenance,
        }


class QueryEncoder:
    """Query embeddings with a small LRU cache: chat widgets send the same starter questions often."""

    def __init__(self, embeddings: SentenceEmbeddings, size: int = 2048) -> None:
        self.embeddings = embeddings
        self.size = size
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()

    def clear(self) -> None:
        self._cache.clear()

    def __call__(self, text: str) -> np.ndarray:
        if text in self._cache:
            self._cache.move_to_end(text)
            return self._cache[text]
        vec = np.asarray(self.embeddings.embed_query(text), dtype=np.float32)
        self._cache[text] = vec
        if len(self._cache) > self.size:
            self._cache.popitem(last=False)
        return vec


class Engine:
    def __init__(
        self,
        settings: Settings,
        snapshot: IndexSnapshot,
        embeddings: SentenceEmbeddings,
        lexicon: Lexicon,
        collection: Any | None = None,
        retrieval: RetrievalParams | None = None,
        answering: AnswerParams | None = None,
        calibration: Calibration | None = None,
        reranker: Reranker | None = None,
        llm: Any | None = None,
    ) -> None:
        self.settings = settings
        self.snapshot = snapshot
        self.lexicon = lexicon
        self.retrieval = retrieval or RetrievalParams()
        self.answering = answering or AnswerParams()
        self.calibration = calibration or Calibration.load(override=settings.abstain_threshold)
        self.index = SearchIndex(snapshot, lexicon, collection)
        self.encode = QueryEncoder(embeddings)
        self.reranker = reranker or SentenceReranker(self.retrieval.sentence_weight)
        self.llm = llm

    @classmethod
    def load(cls, settings: Settings, **kw: Any) -> Engine:
        """Open the committed index and load the models; raises IndexMissing / ModelMismatch / ModelMissing."""
        snapshot = open_index(settings.data_dir, settings.embedding_model)
        embeddings = load_embeddings(settings.embedding_model, settings.embed_batch_size)
        embeddings.model  # noqa: B018 -- load now: /readyz means ready
        assert snapshot.root is not None
        collection = open_chroma(snapshot.root / "chroma").get_collection(COLLECTION)
        lexicon = Lexicon.load(snapshot.root)
        retrieval = kw.pop("retrieval", None) or RetrievalParams()
        reranker = kw.pop("reranker", None)
        if reranker is None and settings.reranker_model:
            reranker = CrossEncoderReranker(settings.reranker_model, SentenceReranker(retrieval.sentence_weight))
        if "llm" not in kw and settings.llm_base_url:
            from service.llm import LLMAnswerer

            kw["llm"] = LLMAnswerer(settings)
        engine = cls(settings, snapshot, embeddings, lexicon, collection, retrieval=retrieval, reranker=reranker, **kw)
        engine.encode("warm up")  # the first encode call is slow; pay it before serving
        return engine

    # --- search -------------------------------------------------------------------------
    def search(self, text: str, k: int = 5, article_id: str | None = None, section: str | None = None) -> list[Hit]:
        query = analyse(text, [], self.lexicon, self.index.vocabulary)
        qvec = self.encode(query.text)
        return self.index.search(query, qvec, self.retrieval, self.reranker, k, article_id, section)

    # --- chat ---------------------------------------------------------------------------
    def chat(self, message: str, history: list[Turn] | None = None) -> ChatResult:
        started = time.perf_counter()
        history = (history or [])[-2 * self.settings.max_history_turns :] if self.settings.max_history_turns else []
        if is_injection(message):
            return self._decline(OUT_OF_SCOPE, None, [], started, reason="out_of_scope")
        query = analyse(message, history, self.lexicon, self.index.vocabulary)
        qvec = self.encode(query.text)
        hits = self.index.search(
            query, qvec, self.retrieval, self.reranker, k=max(10, self.answering.chunks_considered), answerable_only=True
        )
        conf = confidence(query, hits, self.calibration.coverage_weight)
        if conf < self.calibration.threshold:
            return self._decline(self._decline_text(hits), query, hits, started, reason="low_confidence", conf=conf)
        composed = compose(query, qvec, hits, self.index, self.answering)
        mode = "extractive"
        if self.llm is not None:
            generated = self.llm.answer(query, hits, composed)
            if generated is not None:
                composed, mode = generated, "llm"
        units = list(composed.units)
        referral = referral_unit(query, qvec, self.index)
        if referral is not None and not any(
            u.hit.chunk_id == referral.hit.chunk_id and u.start == referral.start for u in units
        ):
            units.append(referral)  # pain or injury: the articles' own advice to see a professional
        composed = render(units)
        return ChatResult(
            answer=composed.text,
            abstained=False,
            citations=composed.citations,
            provenance=self._provenance(query, hits, started, mode=mode, conf=conf),
            hits=hits,
        )

    def _decline_text(self, hits: list[Hit]) -> str:
        topics: list[str] = []
        for h in hits[:5]:
            label = h.chunk.section[-1] if h.chunk.section else h.chunk.title
            if label not in topics:
                topics.append(label)
        if not topics:
            return DECLINE
        return f"{DECLINE} Closest topics the articles do cover: " + ", ".join(f"“{t}”" for t in topics[:3]) + "."

    def _decline(
        self, text: str, query: Query | None, hits: list[Hit], started: float, reason: str, conf: float | None = None
    ) -> ChatResult:
        return ChatResult(
            answer=text,
            abstained=True,
            citations=[],
            provenance=self._provenance(query, hits, started, mode="declined", conf=conf, reason=reason),
            hits=hits,
        )

    def _provenance(
        self, query: Query | None, hits: list[Hit], started: float, mode: str, conf: float | None, reason: str | None = None
    ) -> dict[str, Any]:
        return {
            "index_version": self.snapshot.version,
            "embedding_model": self.snapshot.model,
            "mode": mode,
            "decline_reason": reason,
            "confidence": None if conf is None else round(conf, 4),
            "abstain_threshold": self.calibration.threshold,
            "calibration": self.calibration.source,
            "query": None
            if query is None
            else {
                "resolved": query.text,
                "follow_up_of": query.follow_up_of,
                "corrections": query.corrections,
                "concepts": [c.id for c in query.concepts],
            },
            "retrieved": [
                {"chunk_id": h.chunk_id, "article_id": h.chunk.article_id, "score": round(h.score, 4),
                 "dense": round(h.dense, 4), "keyword": round(h.keyword, 4)}
                for h in hits[:10]
            ],
            "settings": {
                "retrieval": asdict(self.retrieval),
                "answering": asdict(self.answering),
                "reranker": self.reranker.name,
            },
            "llm": self.llm.provenance() if self.llm is not None else None,
            "latency_ms": round((time.perf_counter() - started) * 1000, 2),
        }
