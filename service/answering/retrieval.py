"""Hybrid retrieval over the committed index: dense (Chroma's HNSW) + BM25 (bm25s), fused into
candidates that ``rerank`` then orders.

A question's cost does not grow with the corpus: it takes the ``top_n`` nearest chunks from Chroma and
the ``top_n`` best BM25 matches, scores that pool exactly, and reads sentence vectors only for the
chunks it keeps. The BM25 index and term counts are written at ingest and loaded (ingest/search_files.py).
Built once per index version and then queried read-only, so one instance serves all requests.
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
from collections import Counter, OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np

from ingest import search_files
from ingest.errors import IndexMissing, IndexUnavailable
from ingest.lexicon import Lexicon
from ingest.models import Chunk
from ingest.shards import ShardSentences
from ingest.store import IndexSnapshot, StoredChunk, sentence_id
from ingest.terms import defined_abbreviations
from service.answering.fusion import rrf_fusion, weighted_fusion
from service.answering.query import Query
from service.answering.text import content_words, keyword_tokens, stem

log = logging.getLogger(__name__)
T = TypeVar("T")


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
    hand_set: float = 0.0  # fused + weighted best-sentence cosine (rerank.SentenceReranker), kept when a
    #                        learned or cross-encoder order replaces ``score``
    best_sentence: int = -1  # index into chunk.sentences
    best_sentence_cos: float = 0.0
    extra: dict[str, float] = field(default_factory=dict)


STORE_ATTEMPTS = 3


def from_store(read: Callable[[], T]) -> T:
    """A read from the vector store, tried again after a short pause when it fails: a Chroma server busy
    with a publish can fail one call and answer the next. Still failing, it is IndexUnavailable (HTTP 503,
    "try again"), never a 500."""
    for attempt in range(STORE_ATTEMPTS):
        try:
            return read()
        except Exception as err:
            if attempt == STORE_ATTEMPTS - 1:
                raise IndexUnavailable(
                    f"the index store is unavailable ({type(err).__name__}) — try again shortly") from err
            log.warning("a read from the index store failed (%s: %s); trying again", type(err).__name__, err)
            time.sleep(0.1 * 2**attempt)
    raise AssertionError("unreachable")


class SentenceVectors:
    """The sentence vectors of chunks, read the first time a question retrieves the chunk and kept for
    the ``size`` most recently used chunks, so a question reads a few hundred vectors, not the corpus'.
    They come from the version's shards (``ingest.shards.ShardSentences``), or on a Chroma
    server from its sentence collection (Chroma loads that collection whole on the first read)."""

    def __init__(self, chunks: Sequence[StoredChunk], collection: Any | None, size: int, dim: int) -> None:
        self._chunks = chunks
        self._collection = collection
        self._size = size
        self._dim = dim
        self._cache: OrderedDict[int, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()  # request threads share the cache

    def of(self, chunk_index: int) -> np.ndarray:
        """The chunk's sentence vectors, one row per sentence (none for a reference list)."""
        with self._lock:
            vecs = self._cache.get(chunk_index)
            if vecs is not None:
                self._cache.move_to_end(chunk_index)
                return vecs
        return self._read([chunk_index])[chunk_index]

    def prefetch(self, chunk_indices: Sequence[int]) -> None:
        with self._lock:
            missing = [ci for ci in dict.fromkeys(chunk_indices) if ci not in self._cache]
        if missing:
            self._read(missing)

    def read(self, chunk_indices: Sequence[int]) -> dict[int, np.ndarray]:
        """The vectors of many chunks, bypassing the cache (for reports over the whole corpus)."""
        return self._read(list(chunk_indices), keep=False)

    def _read(self, chunk_indices: list[int], keep: bool = True) -> dict[int, np.ndarray]:
        if isinstance(self._collection, ShardSentences):
            out = {ci: self._collection.of(self._chunks[ci].chunk_id) for ci in chunk_indices}
            if keep:
                self._keep(out)
            return out
        wanted = {ci: [sentence_id(self._chunks[ci].chunk_id, i) for i in range(len(self._chunks[ci].chunk.sentences))]
                  for ci in chunk_indices if not self._chunks[ci].chunk.is_reference}
        ids = [sid for sids in wanted.values() for sid in sids]
        found: dict[str, np.ndarray] = {}
        if ids and self._collection is not None:
            collection = self._collection
            got = from_store(lambda: collection.get(ids=ids, include=["embeddings"]))
            found = dict(zip(got["ids"], np.asarray(got["embeddings"], dtype=np.float32).reshape(-1, self._dim),
                             strict=True))
            if len(found) != len(ids):
                raise IndexMissing("sentence vectors are missing from the index — run `stride ingest --rebuild`")
        empty = np.zeros((0, self._dim), dtype=np.float32)
        out = {ci: (np.stack([found[sid] for sid in wanted[ci]]) if wanted.get(ci) and found else empty)
               for ci in chunk_indices}
        if keep:
            self._keep(out)
        return out

    def _keep(self, out: dict[int, np.ndarray]) -> None:
        with self._lock:
            for ci, vecs in out.items():
                self._cache[ci] = vecs
                self._cache.move_to_end(ci)
            while len(self._cache) > self._size:
                self._cache.popitem(last=False)


class SearchIndex:
    def __init__(
        self,
        snapshot: IndexSnapshot,
        lexicon: Lexicon,
        collection: Any | None = None,
        release: Callable[[], None] | None = None,
        *,
        sentences: Any | None = None,
        search: search_files.SearchFiles | None = None,
        top_n: int = 100,
        sentence_cache: int = 20_000,
        ping: Callable[[], bool] | None = None,
    ) -> None:
        """``collection``/``sentences``: the version's Chroma chunk and sentence collections (None: dense
        search and sentence vectors in memory, for tests). ``search``: the keyword index and term counts
        written at ingest (None: built here). ``top_n``: candidates taken from each of dense and keyword
        search. ``release`` frees what the index holds open (its Chroma client, its lease on the version);
        it runs on ``close()`` or once the last engine over this index is gone, whichever comes first."""
        self._release = weakref.finalize(self, release) if release is not None else None
        self._ping = ping
        self._pinged: tuple[float, bool] = (0.0, True)
        self.snapshot = snapshot
        self.lexicon = lexicon
        self.collection = collection
        self.top_n = top_n
        self.chunks: list[StoredChunk] = list(snapshot.chunks)
        self.position = {sc.chunk_id: i for i, sc in enumerate(self.chunks)}
        dim = len(self.chunks[0].embedding) if self.chunks else 0
        if snapshot.vectors is not None and len(snapshot.vectors) == len(self.chunks):
            self.chunk_vectors = snapshot.vectors  # the chunks' embeddings are its rows: not copied again
        else:
            self.chunk_vectors = (np.stack([sc.embedding for sc in self.chunks]) if self.chunks
                                  else np.zeros((0, dim), dtype=np.float32))
        self._sentences = SentenceVectors(self.chunks, sentences, sentence_cache, dim)
        if search is None:
            search = search_files.build([sc.chunk_id for sc in self.chunks], [sc.chunk for sc in self.chunks],
                                        [sc.indexed_text for sc in self.chunks])
        self.bm25 = search.bm25
        # BM25 row -> chunk position (ingest writes rows in the same order; a mismatch means a broken index).
        self._bm25_rows = np.array([self.position[cid] for cid in search.chunk_ids], dtype=np.int64)
        if len(self._bm25_rows) != len(self.chunks):
            raise ValueError("the keyword index does not match the chunks — run `stride ingest --rebuild`")
        self.vocabulary = search.vocabulary | lexicon.vocabulary()
        self.mentions: Counter[str] = search.mentions
        self.abbreviations = defined_abbreviations(sc.chunk.text for sc in self.chunks if not sc.chunk.is_reference)
        self.answerable_mask = np.array([not sc.chunk.is_reference for sc in self.chunks], dtype=bool)
        # Per-article positions and lower-cased section labels: filters cost array operations, not a
        # Python loop over every chunk per request.
        by_article: dict[str, list[int]] = {}
        for i, sc in enumerate(self.chunks):
            by_article.setdefault(sc.chunk.article_id, []).append(i)
        self._by_article = {a: np.array(ix, dtype=np.int64) for a, ix in by_article.items()}
        self._sections = np.array([sc.chunk.section_label.lower() for sc in self.chunks], dtype=str)
        self.discussed_concepts = {c.id for c in lexicon.concepts if any(map(self._discussed, c.terms))}
        # Instruction-like sentences planted in an article (ingest.planted): never quoted, never sent to an LLM.
        self.planted: dict[str, list[tuple[int, int]]] = {
            aid: [(p.start, p.end) for p in rec.planted] for aid, rec in snapshot.articles.items() if rec.planted
        }
        self._sentence_collection = sentences
        self._phrases: dict[tuple[str, ...], tuple[list[tuple[int, int]], np.ndarray]] = {}
        self._lock = threading.Lock()

    def close(self) -> None:
        if self._release is not None:
            self._release()

    def healthy(self) -> bool:
        """Whether the store answers (a Chroma server may be away); checked at most once a second."""
        if self._ping is None:
            return True
        at, ok = self._pinged
        if time.monotonic() - at > 1.0:
            ok = self._ping()
            self._pinged = (time.monotonic(), ok)
        return ok

    @property
    def open(self) -> bool:
        return self._release is None or self._release.alive

    @property
    def releaser(self) -> Callable[[], None]:
        """Closes this index without referring to it (for whoever must not keep it alive)."""
        return self._release if self._release is not None else (lambda: None)

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
        vecs = self._sentences.of(chunk_index)
        return vecs[sentence] if sentence < len(vecs) else None

    def sentence_sims(self, chunk_index: int, qvec: np.ndarray) -> np.ndarray:
        sims: np.ndarray = self._sentences.of(chunk_index) @ qvec
        return sims

    def sentence_vectors_of(self, chunk_indices: Sequence[int]) -> dict[int, np.ndarray]:
        """Sentence vectors of many chunks at once, uncached: for reports, not requests."""
        return self._sentences.read(chunk_indices)

    def prefetch_sentences(self, chunk_indices: Sequence[int]) -> None:
        """Read the sentence vectors of these chunks in one call (those not cached yet)."""
        self._sentences.prefetch(chunk_indices)

    def sentences_containing(self, qvec: np.ndarray, phrases: Sequence[str], n: int = 10) -> list[tuple[int, int]]:
        """The ``n`` answerable sentences nearest the query among those containing one of ``phrases``
        (lower case; matched as written, lower case and capitalised), as (chunk position, sentence)."""
        variants = sorted({v for p in phrases for v in (p, p.capitalize(), p.title())})
        if self._sentence_collection is None or isinstance(self._sentence_collection, ShardSentences):
            hits, vecs = self._containing(tuple(variants))
            if not hits:
                return []
            order = np.argsort(-(vecs @ qvec), kind="stable")[:n]
            return [hits[i] for i in order]
        where: dict[str, Any] = ({"$contains": variants[0]} if len(variants) == 1
                                 else {"$or": [{"$contains": v} for v in variants]})
        collection = self._sentence_collection
        res = from_store(lambda: collection.query(query_embeddings=[qvec.tolist()], n_results=n,
                                                  where_document=where, include=["metadatas"]))
        return [(self.position[m["chunk_id"]], int(m["i"]))
                for m in res["metadatas"][0] if m["chunk_id"] in self.position]

    def _containing(self, variants: tuple[str, ...]) -> tuple[list[tuple[int, int]], np.ndarray]:
        """The answerable sentences containing one of ``variants`` and their vectors: found by one pass
        over the chunks the first time these phrases are asked about, then kept for this version."""
        with self._lock:
            found = self._phrases.get(variants)
        if found is None:
            hits = [(ci, si) for ci, sc in enumerate(self.chunks)
                    if not sc.chunk.is_reference and any(v in sc.chunk.text for v in variants)
                    for si, (s, e) in enumerate(sc.chunk.sentences) if any(v in sc.chunk.text[s:e] for v in variants)]
            # Read around the cache: these chunks are the whole corpus' mentions, not what questions retrieve.
            vectors = self._sentences.read(sorted({ci for ci, _ in hits}))
            rows = [vectors[ci][si] for ci, si in hits]
            dim = self.chunk_vectors.shape[1]
            found = (hits, np.stack(rows) if rows else np.zeros((0, dim), dtype=np.float32))
            with self._lock:
                self._phrases[variants] = found
        return found

    def mask(
        self, article_id: str | None = None, section: str | None = None, answerable_only: bool = False
    ) -> np.ndarray:
        m = np.ones(len(self.chunks), dtype=bool)
        if article_id:
            only = np.zeros(len(self.chunks), dtype=bool)
            only[self._by_article.get(article_id, np.zeros(0, dtype=np.int64))] = True
            m &= only
        if section:
            m &= np.char.find(self._sections, section.lower()) >= 0
        if answerable_only:
            m &= self.answerable_mask
        return m

    def dense_top(self, qvec: np.ndarray, allowed: np.ndarray | None, narrow: bool,
                  answerable_only: bool) -> dict[int, float]:
        """The ``top_n`` chunks nearest the query (position -> cosine), from Chroma's HNSW index. With an
        article or section filter (``narrow``), the allowed chunks are scored exactly instead: they are
        few, and an ANN search could return none of them."""
        n = min(self.top_n, len(self.chunks))
        if narrow or self.collection is None:
            pool = np.flatnonzero(allowed) if allowed is not None else np.arange(len(self.chunks))
            sims = self.chunk_vectors[pool] @ qvec
            best = np.argsort(-sims, kind="stable")[:n]
            return {int(pool[i]): float(sims[i]) for i in best}
        # No metadata filter in Chroma: a filtered query scans (about 0.5 s at 100k chunks, 1-2 ms without). Reference
        # lists are few, so a few more results are asked for and they are dropped here.
        collection = self.collection
        res = from_store(lambda: collection.query(
            query_embeddings=[qvec.tolist()], include=["distances"],
            n_results=min(len(self.chunks), n + n // 4) if answerable_only else n))
        near = {self.position[cid]: 1.0 - float(dist)
                for cid, dist in zip(res["ids"][0], res["distances"][0], strict=True) if cid in self.position}
        if answerable_only:
            near = {i: d for i, d in near.items() if self.answerable_mask[i]}
        return dict(list(near.items())[:n])

    def keyword_scores(self, query: Query) -> np.ndarray:
        """BM25 score of every chunk, by position (numpy over the query terms' postings)."""
        toks = [t for t in keyword_tokens(query.keyword_text) if t in self.bm25.vocab_dict]
        scores = np.zeros(len(self.chunks), dtype=np.float32)
        if toks:
            scores[self._bm25_rows] = np.asarray(self.bm25.get_scores(toks), dtype=np.float32)
        return scores

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
        filtered = bool(article_id or section or answerable_only)
        allowed = self.mask(article_id, section, answerable_only) if filtered else None
        near = self.dense_top(qvec, allowed, narrow=bool(article_id or section), answerable_only=answerable_only)
        keyword = self.keyword_scores(query)
        if allowed is not None:
            top_keyword = float(keyword.max(initial=0.0))  # BM25 is scaled by the corpus' best match
            keyword = np.where(allowed, keyword, 0.0)
        else:
            top_keyword = None
        n = min(self.top_n, len(self.chunks))
        by_keyword = np.argpartition(-keyword, n - 1)[:n] if n < len(keyword) else np.arange(len(keyword))
        by_keyword = by_keyword[keyword[by_keyword] > 0]
        pool = np.array(sorted(set(near) | {int(i) for i in by_keyword}), dtype=np.int64)
        # Exact cosines for the whole pool: the ANN's and the keyword candidates' alike.
        dense = self.chunk_vectors[pool] @ qvec
        kw = keyword[pool]
        if params.fusion == "rrf":
            fused = rrf_fusion(dense, kw)
        else:
            fused = weighted_fusion(dense, kw, params.dense_weight, top=top_keyword)
        order = [int(pool[i]) for i in np.argsort(-fused, kind="stable")][: max(params.candidates, k)]
        at = {int(p): j for j, p in enumerate(pool)}
        self.prefetch_sentences(order)
        return [
            Hit(i, self.chunks[i].chunk_id, self.chunks[i].chunk, float(dense[at[i]]), float(kw[at[i]]),
                float(fused[at[i]]))
            for i in order
        ]
