"""Hybrid retrieval over the committed index: dense (Chroma) + BM25 (bm25s), fused into candidates
that ``rerank`` then orders.

Everything is built once from an IndexSnapshot (BM25 is derived from the chunks Chroma holds, so
Chroma stays the single source of truth) and then queried read-only, so one instance serves all
requests.
"""

from __future__ import annotations

import itertools
import logging
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ingest.lexicon import Lexicon
from ingest.models import Chunk
from ingest.store import IndexSnapshot, StoredChunk
from service.answering.fusion import rrf_fusion, weighted_fusion
from service.answering.query import Query
from service.answering.text import content_words, stem, words

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RetrievalParams:
    """Tuned on the dev split (``python -m evals.tune retrieval``)."""

    fusion: str = "weighted"  # "weighted" | "rrf"
    dense_weight: float = 0.9
    sentence_weight: float = 0.5  # reranker: weight of the best sentence's cosine
    candidates: int = 30


@dataclass
class Hit:
    index: int  # position in SearchIndex.chunks
    chunk_id: str
    chunk: Chunk
    dense: float
    keyword: float
    fused: float
    score: float = 0.0
    best_sentence: int = -1  # index into chunk.sentences
    best_sentence_cos: float = 0.0
    extra: dict[str, float] = field(default_factory=dict)


def keyword_tokens(text: str) -> list[str]:
    return [stem(w) for w in content_words(text)]


class SearchIndex:
    def __init__(self, snapshot: IndexSnapshot, lexicon: Lexicon, collection: Any | None = None) -> None:
        import bm25s

        self.snapshot = snapshot
        self.lexicon = lexicon
        self.collection = collection  # Chroma collection for dense search; None = in-memory vectors
        self.chunks: list[StoredChunk] = list(snapshot.chunks)
        self.position = {sc.chunk_id: i for i, sc in enumerate(self.chunks)}
        self.chunk_vectors = np.asarray([sc.embedding for sc in self.chunks], dtype=np.float32)
        # Sentence vectors, flattened, with where each one lives.
        self.sentence_owner: list[tuple[int, int]] = []
        vecs: list[list[float]] = []
        for ci, sc in enumerate(self.chunks):
            for si, v in enumerate(sc.sentence_embeddings):
                self.sentence_owner.append((ci, si))
                vecs.append(v)
        dim = self.chunk_vectors.shape[1] if len(self.chunks) else 0
        self.sentence_vectors = np.asarray(vecs, dtype=np.float32).reshape(-1, dim)
        self._sentence_slices: dict[int, slice] = {}
        start = 0
        for ci, sc in enumerate(self.chunks):
            self._sentence_slices[ci] = slice(start, start + len(sc.sentence_embeddings))
            start += len(sc.sentence_embeddings)
        self.bm25 = bm25s.BM25()
        self.bm25.index([keyword_tokens(sc.indexed_text) or ["_"] for sc in self.chunks], show_progress=False)
        self.vocabulary = frozenset({w for sc in self.chunks for w in words(sc.indexed_text)} | lexicon.vocabulary())
        self.answerable_mask = np.array([not sc.chunk.is_reference for sc in self.chunks])
        # How many answerable sentences name each word stem, and which lexicon concepts the articles
        # discuss: declining asks whether a question's focus is a topic here, not just a word here.
        self.mentions: Counter[str] = Counter()
        for sc in self.chunks:
            if not sc.chunk.is_reference:
                for s, e in sc.chunk.sentences:
                    toks = [stem(w) for w in content_words(sc.chunk.text[s:e])]
                    self.mentions.update(set(toks) | {f"{a} {b}" for a, b in itertools.pairwise(toks)})
        self.discussed_concepts = {c.id for c in lexicon.concepts if any(map(self._discussed, c.terms))}
        # Instruction-like sentences planted in an article (ingest.planted): never quoted, never sent to an LLM.
        self.planted: dict[str, list[tuple[int, int]]] = {
            aid: [(p.start, p.end) for p in rec.planted] for aid, rec in snapshot.articles.items() if rec.planted
        }

    def is_planted(self, chunk: Chunk, start: int, end: int) -> bool:
        """Whether the chunk-relative span overlaps a planted sentence."""
        s, e = chunk.start + start, chunk.start + end
        return any(ps < e and s < pe for ps, pe in self.planted.get(chunk.article_id, ()))

    def without_planted(self, chunk: Chunk) -> str:
        """The chunk's text with planted sentences blanked out; offsets stay as they are."""
        text = chunk.text
        for ps, pe in self.planted.get(chunk.article_id, ()):
            a, b = max(ps - chunk.start, 0), min(pe - chunk.start, len(text))
            if a < b:
                text = text[:a] + " " * (b - a) + text[b:]
        return text

    def _discussed(self, term: str) -> bool:
        """Every content word of ``term`` is named in at least two answerable sentences."""
        found = content_words(term)
        return bool(found) and all(self.mentions.get(stem(w), 0) >= 2 for w in found)

    def sentence_vector(self, chunk_index: int, sentence: int) -> np.ndarray | None:
        sl = self._sentence_slices[chunk_index]
        return self.sentence_vectors[sl.start + sentence] if sentence < sl.stop - sl.start else None

    def sentence_sims(self, chunk_index: int, qvec: np.ndarray) -> np.ndarray:
        sims: np.ndarray = self.sentence_vectors[self._sentence_slices[chunk_index]] @ qvec
        return sims

    def mask(
        self, article_id: str | None = None, section: str | None = None, answerable_only: bool = False
    ) -> np.ndarray:
        m = np.ones(len(self.chunks), dtype=bool)
        if article_id:
            m &= np.array([sc.chunk.article_id == article_id for sc in self.chunks])
        if section:
            want = section.lower()
            m &= np.array([want in sc.chunk.section_label.lower() for sc in self.chunks])
        if answerable_only:
            m &= self.answerable_mask
        return m

    def dense_scores(self, qvec: np.ndarray) -> np.ndarray:
        """Cosine of the query to every chunk, from Chroma's HNSW search (or in memory without Chroma)."""
        if self.collection is None:
            in_memory: np.ndarray = self.chunk_vectors @ qvec
            return in_memory
        res = self.collection.query(
            query_embeddings=[qvec.tolist()], n_results=len(self.chunks), include=["distances"]
        )
        scores = np.zeros(len(self.chunks), dtype=np.float32)
        for cid, dist in zip(res["ids"][0], res["distances"][0], strict=True):
            if cid in self.position:  # chunks of other (uncommitted) versions are not ours
                scores[self.position[cid]] = 1.0 - float(dist)
        return scores

    def keyword_scores(self, query: Query) -> np.ndarray:
        toks = [t for t in keyword_tokens(query.keyword_text) if t in self.bm25.vocab_dict]
        if not toks:
            return np.zeros(len(self.chunks), dtype=np.float32)
        return np.asarray(self.bm25.get_scores(toks), dtype=np.float32)

    def candidates(
        self,
        query: Query,
        qvec: np.ndarray,
        params: RetrievalParams,
        k: int,
        article_id: str | None = None,
        section: str | None = None,
        answerable_only: bool = False,
    ) -> list[Hit]:
        """The best ``max(params.candidates, k)`` chunks by fused score, within the filters."""
        if not self.chunks:
            return []
        dense = self.dense_scores(qvec)
        keyword = self.keyword_scores(query)
        fused = (
            rrf_fusion(dense, keyword)
            if params.fusion == "rrf"
            else weighted_fusion(dense, keyword, params.dense_weight)
        )
        allowed = self.mask(article_id, section, answerable_only)
        order = [i for i in np.argsort(-fused, kind="stable") if allowed[i]][: max(params.candidates, k)]
        return [
            Hit(
                int(i),
                self.chunks[i].chunk_id,
                self.chunks[i].chunk,
                float(dense[i]),
                float(keyword[i]),
                float(fused[i]),
            )
            for i in order
        ]
