"""A question's cost does not grow with the corpus: candidates come from top-N searches, sentence vectors
are read only for the chunks a question keeps, and the keyword index is built at ingest and loaded."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from ingest import search_files
from ingest.embedding import SentenceEmbeddings
from ingest.lexicon import Lexicon
from ingest.pipeline import run_ingest
from ingest.settings import Settings
from ingest.shards import ShardSentences
from ingest.store import COLLECTION, IndexPaths, open_chroma, open_index
from service.answering.engine import Engine, open_search_index
from service.answering.query import analyse
from service.answering.retrieval import SearchIndex
from tests.fakes import HashingModel, fake_embeddings_factory

QUESTIONS = ["Which muscles does running work?", "How do I do a clamshell?", "hamstring curls",
             "Can runners build muscle?", "What is the interference effect?"]


class CountingCollection:
    """The real Chroma collection, with a tally of what each call asks for."""

    def __init__(self, real: Any) -> None:
        self.real = real
        self.queried_n: list[int] = []
        self.got_ids: list[int] = []

    def query(self, **kw: Any) -> Any:
        self.queried_n.append(kw["n_results"])
        return self.real.query(**kw)

    def get(self, **kw: Any) -> Any:
        self.got_ids.append(len(kw.get("ids") or []))
        return self.real.get(**kw)


class CountingSentences(ShardSentences):
    """The version's sentence vectors, read from its shards, with a tally of the vectors each read returns."""

    def __init__(self, real: ShardSentences) -> None:
        self.__dict__.update(real.__dict__)
        self.got_ids: list[int] = []

    def of(self, chunk_id: str) -> np.ndarray:
        vecs = super().of(chunk_id)
        self.got_ids.append(len(vecs))
        return vecs


@pytest.fixture
def counted(fake_index: Settings) -> tuple[Engine, CountingCollection, CountingSentences]:
    snapshot = open_index(fake_index.data_dir, fake_index.embedding_model)
    client = open_chroma(snapshot.root / "chroma")
    chunks = CountingCollection(client.get_collection(COLLECTION))
    sentences = CountingSentences(snapshot.sentences)
    index = SearchIndex(snapshot, Lexicon.load(snapshot.root), chunks, release=client.close, sentences=sentences,
                        search=search_files.read(snapshot.root), top_n=20)
    engine = Engine.load(fake_index.model_copy(update={"abstain_threshold": 0.05}),
                         embeddings=SentenceEmbeddings(fake_index.embedding_model, model=HashingModel()))
    return engine.with_parts(index=index), chunks, sentences


def test_a_question_asks_chroma_for_top_n_and_reads_only_its_candidates_sentences(counted: Any) -> None:
    engine, chunks, sentences = counted
    total = len(engine.snapshot.chunks)
    assert total > 60
    result = engine.chat("Which muscles does running work?")
    assert result.citations
    assert chunks.queried_n == [25]  # top_n, plus a quarter for reference lists dropped after: never all chunks
    read = sum(sentences.got_ids)
    all_sentences = sum(len(sc.chunk.sentences) for sc in engine.snapshot.chunks)
    kept = {h.chunk_id for h in result.hits}
    assert 0 < read <= sum(len(sc.chunk.sentences) for sc in engine.snapshot.chunks if sc.chunk_id in kept) + 200
    assert read < all_sentences / 2
    sentences.got_ids.clear()
    engine.chat("Which muscles does running work?")
    assert sum(sentences.got_ids) == 0  # the same chunks again: their vectors are cached


def test_the_loaded_keyword_index_scores_like_one_built_from_the_chunks(fake_index: Settings) -> None:
    loaded = open_search_index(fake_index, fake_index.embedding_model)
    built = SearchIndex(loaded.snapshot, loaded.lexicon)  # tokenised here, from the chunks
    for q in QUESTIONS:
        query = analyse(q, [], loaded.lexicon, loaded.vocabulary)
        assert np.allclose(loaded.keyword_scores(query), built.keyword_scores(query))
    assert loaded.mentions == built.mentions and loaded.vocabulary == built.vocabulary
    loaded.close()


def test_ingest_writes_the_keyword_index_of_what_it_publishes(fake_index: Settings) -> None:
    (fake_index.corpus_dir / "900_tibialis.md").write_text(
        "# Tibialis Drills\n\nThe tibialis posterior holds up the arch. Seated band inversions train it.\n",
        encoding="utf-8")
    run_ingest(fake_index, embeddings_factory=fake_embeddings_factory())
    current = IndexPaths.for_data_dir(fake_index.data_dir).current()
    assert current is not None
    files = search_files.read(current.root)
    assert "inversions" in files.vocabulary and files.mentions["tibiali"] >= 1
    index = open_search_index(fake_index, fake_index.embedding_model)
    top = index.candidates(analyse("seated band inversions", [], index.lexicon, index.vocabulary),
                           index.chunk_vectors[0], engine_params(), 5)
    assert top[0].chunk.article_id == "900-tibialis"
    index.close()


def test_filters_keep_to_their_article_and_section(counted: Any) -> None:
    engine, chunks, _ = counted
    hits = engine.search("exercises", k=10, article_id="hip-strengthening-exercises-for-runners")
    assert hits and {h.chunk.article_id for h in hits} == {"hip-strengthening-exercises-for-runners"}
    hits = engine.search("exercises", k=10, section="faq")
    assert hits and all("faq" in h.chunk.section_label.lower() for h in hits)
    assert chunks.queried_n == []  # a filtered search scores the allowed chunks exactly, no ANN call


def engine_params() -> Any:
    from service.answering.retrieval import RetrievalParams

    return RetrievalParams()
