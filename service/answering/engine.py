"""The answering facade: ``chat``, ``search`` and ``articles`` over one committed index version,
built from explicit, typed parts (retrieval parameters, reranker, answerer, calibration)."""

from __future__ import annotations

import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np

from ingest import search_files
from ingest.embedding import SentenceEmbeddings, embeddings_for
from ingest.errors import IndexMissing
from ingest.lexicon import Lexicon
from ingest.records import ArticleRecord
from ingest.settings import Settings
from ingest.store import (
    COLLECTION,
    IndexPaths,
    IndexSnapshot,
    VersionLease,
    open_chroma,
    read_version,
)
from service.answering.abstain import (
    OUT_OF_SCOPE,
    SHIPPED_CALIBRATION,
    Calibration,
    closest_topics,
    confidence,
    decline_text,
    focus_coverage,
    subject_unnamed,
)
from service.answering.answerer import Answerer, Draft, ExtractiveAnswerer
from service.answering.citations import Citation, Renderer
from service.answering.compose import AnswerParams, already_quoted, gather, referral_unit
from service.answering.guard import is_injection
from service.answering.provenance import (
    DeclineReason,
    EngineSettings,
    Mode,
    Provenance,
    QueryInfo,
    RetrievedChunk,
)
from service.answering.query import Query, Turn, analyse
from service.answering.ranking import RankingModel
from service.answering.rerank import CrossEncoderReranker, LearnedReranker, Reranker, SentenceReranker
from service.answering.retrieval import Hit, RetrievalParams, SearchIndex
from service.answering.selection import SelectionModel
from service.answering.units import Candidate


@dataclass(frozen=True)
class ChatResult:
    answer: str
    abstained: bool
    citations: list[Citation]
    provenance: Provenance
    hits: list[Hit] = field(default_factory=list)  # what was retrieved, for evals and reports
    suggestions: list[str] = field(default_factory=list)  # a decline's closest covered topics, to ask about


@dataclass(frozen=True)
class Piece:
    """A streamed part of an answer: the text it adds (one unit and its marker) and its citation, if new."""

    text: str
    citation: Citation | None


class QueryEncoder:
    """Query embeddings with a small LRU cache: chat widgets send the same starter questions often.

    Request threads share it: the cache is only touched under a lock (an OrderedDict's check-then-move
    raced into KeyError at 16 threads), while encoding itself runs outside it, in parallel."""

    def __init__(self, embeddings: SentenceEmbeddings, size: int = 2048) -> None:
        self.embeddings = embeddings
        self.size = size
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def clear(self) -> None:
        with self._lock:
            self._cache.clear()

    def __call__(self, text: str) -> np.ndarray:
        with self._lock:
            cached = self._cache.get(text)
            if cached is not None:
                self._cache.move_to_end(text)
                return cached
        vec = np.asarray(self.embeddings.embed_query(text), dtype=np.float32)
        with self._lock:
            self._cache[text] = vec
            self._cache.move_to_end(text)
            while len(self._cache) > self.size:
                self._cache.popitem(last=False)
        return vec


def open_search_index(settings: Settings, model: str) -> SearchIndex:
    """The search index over the version published now, holding a lease on it (and its Chroma client)
    until closed or dropped, so no ingest deletes it while it serves."""
    if settings.chroma_url:
        return _open_on_server(settings, model)
    lease = IndexPaths.for_data_dir(settings.data_dir).lease_current()
    if lease is None:
        raise IndexMissing(f"no index in {settings.data_dir / 'index'} — run `stride ingest`")
    client = None
    try:
        snapshot = read_version(lease.version, model)
        lexicon = Lexicon.load(lease.version.root)
        try:
            search = search_files.read(lease.version.root)
        except FileNotFoundError as err:
            raise IndexMissing(
                f"the keyword index of {lease.version.root} is missing — run `stride ingest --rebuild`"
            ) from err
        client = open_chroma(lease.version.chroma)
        # Sentence vectors are read from the version's shards as questions need them, not from Chroma.
        return SearchIndex(snapshot, lexicon, client.get_collection(COLLECTION), release=_releaser(client, lease),
                           sentences=snapshot.sentences, search=search, top_n=settings.retrieval_top_n)
    except BaseException:
        if client is not None:
            client.close()
        lease.close()
        raise


def _open_on_server(settings: Settings, model: str) -> SearchIndex:
    # The keyword index is built here from the chunks: a replica needs nothing but the server.
    from ingest.chroma_server import ChromaServer, chunk_collection, read_snapshot, sentence_collection

    assert settings.chroma_url is not None
    server = ChromaServer.connect(settings.chroma_url)
    lease = server.lease_current()
    if lease is None:
        raise IndexMissing(f"no index on {settings.chroma_url} — run `stride ingest`")
    try:
        snapshot, lexicon, generation = read_snapshot(server, lease.version_id, model)
        return SearchIndex(snapshot, lexicon, server.client.get_collection(chunk_collection(generation)),
                           release=lease.close, sentences=server.client.get_collection(sentence_collection(generation)),
                           top_n=settings.retrieval_top_n, ping=server.alive)
    except BaseException:
        lease.close()
        raise


def _releaser(client: object, lease: VersionLease) -> Callable[[], None]:
    def release() -> None:
        try:
            client.close()  # type: ignore[attr-defined]
        finally:
            lease.close()

    return release


def _opened(index: SearchIndex) -> tuple[IndexSnapshot, Lexicon, SearchIndex]:
    return index.snapshot, index.lexicon, index


class Engine:
    def __init__(
        self,
        snapshot: IndexSnapshot,
        lexicon: Lexicon,
        index: SearchIndex,
        encoder: QueryEncoder,
        *,
        retrieval: RetrievalParams,
        reranker: Reranker,
        answerer: Answerer,
        calibration: Calibration,
        max_history_turns: int = 20,
    ) -> None:
        self._snapshot = snapshot
        self._lexicon = lexicon
        self._index = index
        self._encoder = encoder
        self._retrieval = retrieval
        self._reranker = reranker
        self._answerer = answerer
        self._calibration = calibration
        self._max_history_turns = max_history_turns

    @classmethod
    def load(
        cls,
        settings: Settings,
        *,
        embeddings: SentenceEmbeddings | None = None,
        retrieval: RetrievalParams | None = None,
        answering: AnswerParams | None = None,
        calibration: Calibration | None = None,
        selection: SelectionModel | None = None,
        ranking: RankingModel | None = None,
    ) -> Engine:
        """Open the committed index and load the models; raises IndexMissing / ModelMismatch / ModelMissing.
        ``embeddings`` is the seam for another model (tests pass a deterministic one)."""
        embeddings = embeddings or embeddings_for(settings)
        encoder = QueryEncoder(embeddings)
        if settings.chroma_url or IndexPaths.for_data_dir(settings.data_dir).current() is not None:
            embeddings.preload_in_background()  # the model loads while the index is read
        index = open_search_index(settings, embeddings.name)
        try:
            embeddings.model  # noqa: B018 -- load now: /readyz means ready
            embeddings.encode_on_one_thread()
            retrieval = retrieval or RetrievalParams()
            hand_set = SentenceReranker(retrieval.sentence_weight)
            reranker: Reranker = (CrossEncoderReranker(settings.reranker_model, hand_set) if settings.reranker_model
                                  else LearnedReranker(ranking or RankingModel.load(), hand_set))
            answerer: Answerer = ExtractiveAnswerer(answering, selection)
            if settings.llm_base_url:
                from service.answering.llm import LLMAnswerer

                answerer = LLMAnswerer(settings, fallback=answerer)
            engine = cls(
                index.snapshot,
                index.lexicon,
                index,
                encoder,
                retrieval=retrieval,
                reranker=reranker,
                answerer=answerer,
                calibration=calibration or Calibration.load(
                    settings.calibration_file or SHIPPED_CALIBRATION, override=settings.abstain_threshold
                ),
                max_history_turns=settings.max_history_turns,
            )
            engine.encode("warm up")  # the first encode call is slow; pay it before serving
        except BaseException:
            index.close()
            raise
        return engine

    def reopen(self, settings: Settings) -> Engine:
        """An engine over the version published now, sharing this one's models and parts (a reload
        costs reading the index, not loading the model again). This engine keeps serving meanwhile."""
        return Engine(
            *_opened(open_search_index(settings, self._encoder.embeddings.name)),
            self._encoder,
            retrieval=self._retrieval,
            reranker=self._reranker,
            answerer=self._answerer,
            calibration=self._calibration,
            max_history_turns=self._max_history_turns,
        )

    def close(self) -> None:
        """Release the version's files and lease now (otherwise: when the last reference goes)."""
        self._index.close()

    def with_parts(
        self,
        *,
        retrieval: RetrievalParams | None = None,
        reranker: Reranker | None = None,
        answerer: Answerer | None = None,
        calibration: Calibration | None = None,
        index: SearchIndex | None = None,
    ) -> Engine:
        """Another engine over the same encoder with some parts replaced (evals, tuning; ``index``: the
        same version searched another way, e.g. through an instrumented collection)."""
        index = index or self._index
        return Engine(
            index.snapshot,
            index.lexicon,
            index,
            self._encoder,
            retrieval=retrieval or self._retrieval,
            reranker=reranker or self._reranker,
            answerer=answerer or self._answerer,
            calibration=calibration or self._calibration,
            max_history_turns=self._max_history_turns,
        )

    # --- read-only views, for the API, evals and reports ----------------------------------------
    @property
    def snapshot(self) -> IndexSnapshot:
        """The index version being served (manifest, chunks with their vectors, articles)."""
        return self._snapshot

    @property
    def version_id(self) -> str:
        """The published version's directory name (a re-publish of the same content gets a new one)."""
        return self._snapshot.version_id

    @property
    def search_index(self) -> SearchIndex:
        return self._index

    @property
    def lexicon(self) -> Lexicon:
        return self._lexicon

    @property
    def calibration(self) -> Calibration:
        return self._calibration

    @property
    def retrieval(self) -> RetrievalParams:
        return self._retrieval

    @property
    def answering(self) -> AnswerParams:
        return self._answerer.params

    def articles(self) -> dict[str, ArticleRecord]:
        return self._snapshot.articles

    def article(self, article_id: str) -> ArticleRecord | None:
        return self._snapshot.articles.get(article_id)

    def encode(self, text: str) -> np.ndarray:
        """The normalised query embedding of ``text`` (cached)."""
        return self._encoder(text)

    def encode_many(self, texts: list[str]) -> np.ndarray:
        """Normalised embeddings of many texts in batches (uncached: for reports, not requests)."""
        if not texts:
            return np.zeros((0, 1), dtype=np.float32)
        return np.asarray(self._encoder.embeddings.encode(texts), dtype=np.float32)

    def count_tokens(self, text: str) -> int:
        """Word pieces of ``text`` by the embedding model's own tokenizer (for usage reports); a model
        without one (a test double) counts words and punctuation marks."""
        tokenizer = getattr(self._encoder.embeddings.model, "tokenizer", None)
        if tokenizer is not None:
            return len(tokenizer.tokenize(text))
        return len(re.findall(r"\w+|[^\w\s]", text))

    def clear_query_cache(self) -> None:
        self._encoder.clear()

    # --- search ------------------------------------------------------------------------------------
    def retrieve(
        self,
        message: str,
        history: list[Turn] | None = None,
        k: int = 10,
        article_id: str | None = None,
        section: str | None = None,
        answerable_only: bool = False,
        follow_up: bool | None = None,
    ) -> tuple[Query, np.ndarray, list[Hit]]:
        """The resolved query, its vector and the ``k`` best chunks, reranked. ``follow_up``: whether the
        message leans on ``history`` (None: judged from its wording)."""
        query = analyse(message, history or [], self._lexicon, self._index.vocabulary, self._index.abbreviations,
                        follow_up)
        qvec = self._encoder(query.text)
        candidates = self._index.candidates(query, qvec, self._retrieval, k, article_id, section, answerable_only)
        return query, qvec, self._reranker.rerank(query, qvec, candidates, self._index)[:k]

    def candidates(
        self, message: str, history: list[Turn] | None = None
    ) -> tuple[Query, np.ndarray, list[Candidate], float]:
        """The candidate answer units chat would choose from (for fitting the selection weights)."""
        query, qvec, hits = self.retrieve(message, history, k=10, answerable_only=True)
        cands, top_score = gather(query, hits, self._index, self._answerer.params)
        return query, qvec, cands, top_score

    def search(self, text: str, k: int = 5, article_id: str | None = None, section: str | None = None) -> list[Hit]:
        return self.retrieve(text, [], k, article_id, section)[2]

    # --- chat --------------------------------------------------------------------------------------
    def chat(self, message: str, history: list[Turn] | None = None) -> ChatResult:
        """The whole answer at once: ``chat_stream`` run to its end."""
        for item in self.chat_stream(message, history):
            if isinstance(item, ChatResult):
                return item
        raise RuntimeError("chat_stream ended without its result")

    def chat_stream(self, message: str, history: list[Turn] | None = None) -> Iterator[Piece | ChatResult]:
        """The answer as it is made: a ``Piece`` per unit as soon as the answerer has it (its text with the
        ``[n]`` marker, and the citation when new), then the ``ChatResult``, whose answer is those pieces
        joined. A decline is the result alone."""
        started = time.perf_counter()
        history = (history or [])[-2 * self._max_history_turns :] if self._max_history_turns else []
        if is_injection(message):
            yield self._decline(OUT_OF_SCOPE, None, [], started, "out_of_scope")
            return
        k = max(10, self._answerer.params.chunks_considered)
        query, qvec, hits = self.retrieve(message, history, k=k, answerable_only=True)
        focus_covered, conf = self._confidence(query, hits)
        if (conf < self._calibration.threshold and query.follow_up_of is None and query.focus
                and focus_covered >= 1.0 and any(t.role == "user" for t in history)):
            # "Can you give me an example week?" leans on the conversation without a pronoun to show it:
            # a message about nothing the articles don't discuss, that they can't answer alone but can
            # as a follow-up, is one. ("What running shoes should I buy?" asks about something else.) The
            # second retrieval is paid only by a message that would otherwise be declined.
            alt_query, alt_qvec, alt_hits = self.retrieve(message, history, k=k, answerable_only=True, follow_up=True)
            alt_covered, alt_conf = self._confidence(alt_query, alt_hits)
            if alt_conf >= self._calibration.threshold:
                query, qvec, hits, focus_covered, conf = alt_query, alt_qvec, alt_hits, alt_covered, alt_conf
        if conf < self._calibration.threshold:
            topics = closest_topics(hits)
            yield self._decline(decline_text(hits, topics), query, hits, started, "low_confidence", conf,
                                focus_covered, suggestions=topics)
            return
        renderer = Renderer()
        draft: Draft | None = None
        for item in self._answerer.stream(query, qvec, hits, self._index):
            if isinstance(item, Draft):
                draft = item
            else:
                yield Piece(*renderer.add(item))
        assert draft is not None
        referral = referral_unit(query, qvec, self._index)
        if referral is not None and not already_quoted(referral, draft.units):
            yield Piece(*renderer.add(referral))  # pain or injury: the articles' own advice to see a professional
        rendered = renderer.rendered()
        yield ChatResult(
            answer=rendered.text,
            abstained=False,
            citations=rendered.citations,
            provenance=self._provenance(query, hits, started, draft.mode, conf, draft=draft,
                                        focus_covered=focus_covered),
            hits=hits,
        )

    def _confidence(self, query: Query, hits: list[Hit]) -> tuple[float, float]:
        """How much of the question's focus the articles discuss, and the calibrated confidence."""
        covered = focus_coverage(query, self._index.mentions, self._index.discussed_concepts)
        unnamed = subject_unnamed(query, self._index.mentions, self._index.discussed_concepts)
        return covered, confidence(query, hits, self._calibration, covered, unnamed)

    def _decline(
        self, text: str, query: Query | None, hits: list[Hit], started: float, reason: DeclineReason,
        conf: float | None = None, focus_covered: float = 1.0, suggestions: list[str] | None = None,
    ) -> ChatResult:
        return ChatResult(
            answer=text,
            abstained=True,
            citations=[],
            provenance=self._provenance(query, hits, started, "declined", conf, reason=reason,
                                        focus_covered=focus_covered),
            hits=hits,
            suggestions=suggestions or [],
        )

    def _provenance(
        self, query: Query | None, hits: list[Hit], started: float, mode: Mode, conf: float | None,
        reason: DeclineReason | None = None, draft: Draft | None = None, focus_covered: float = 1.0,
    ) -> Provenance:
        return Provenance(
            index_version=self._snapshot.version,
            embedding_model=self._snapshot.model,
            mode=mode,
            decline_reason=reason,
            confidence=None if conf is None else round(conf, 4),
            abstain_threshold=self._calibration.threshold,
            calibration=self._calibration.source,
            query=None
            if query is None
            else QueryInfo(
                resolved=query.text,
                follow_up_of=query.follow_up_of,
                corrections=query.corrections,
                concepts=[c.id for c in query.concepts],
                answer_type=query.answer_type,
                focus=query.focus,
                focus_coverage=round(focus_covered, 4),
                subject=query.subject,
            ),
            retrieved=[
                RetrievedChunk(
                    chunk_id=h.chunk_id,
                    article_id=h.chunk.article_id,
                    score=round(h.score, 4),
                    dense=round(h.dense, 4),
                    keyword=round(h.keyword, 4),
                )
                for h in hits[:10]
            ],
            settings=EngineSettings(
                retrieval=self._retrieval, answering=self._answerer.params, reranker=self._reranker.name
            ),
            llm=draft.llm if draft is not None else None,
            latency_ms=round((time.perf_counter() - started) * 1000, 2),
        )
