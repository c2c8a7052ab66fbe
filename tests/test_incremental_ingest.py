"""Format 5: an ingest re-processes only changed articles, keeps the rest's shards, and gives the index a
fresh build would; sentence vectors are read from the shards; BM25 equals bm25s's own."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import bm25s
import numpy as np
import pytest

from ingest import pipeline, search_files
from ingest.embedding import SentenceEmbeddings
from ingest.pipeline import run_ingest
from ingest.settings import Settings
from ingest.store import IndexPaths, open_index
from ingest.terms import keyword_tokens
from tests.fakes import HashingModel, fake_embeddings_factory

CORPUS = Path(__file__).resolve().parent.parent / "corpus"


@pytest.fixture
def reprocessed(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    counts: list[int] = []
    monkeypatch.setattr(pipeline, "count_reprocessed", counts.append)
    return counts


def _ingest(settings: Settings, corpus_dir: Path, **kw: Any) -> pipeline.IngestReport:
    return run_ingest(settings.model_copy(update={"corpus_dir": corpus_dir}),
                      embeddings_factory=fake_embeddings_factory(), **kw)


def _snapshot(settings: Settings) -> dict[str, Any]:
    snap = open_index(settings.data_dir, settings.embedding_model)
    return {sc.chunk_id: (sc.chunk, np.asarray(sc.embedding).tolist(), snap.sentences.of(sc.chunk_id).tolist())
            for sc in snap.chunks}


def test_editing_one_article_reprocesses_only_that_article(settings: Settings, corpus_dir: Path,
                                                           reprocessed: list[int], tmp_path: Path) -> None:
    _ingest(settings, corpus_dir)
    assert reprocessed == [5]
    target = corpus_dir / "003_c92f3383a1a91ea7.txt"
    target.write_text(target.read_text(encoding="utf-8") + "\nHamstring curls twice a week help runners.\n",
                      encoding="utf-8")
    report = _ingest(settings, corpus_dir)
    assert reprocessed == [5, 1]
    changed = {aid for aid, c in report.articles.items() if c.added or c.deleted}
    assert changed == {"does-running-help-hamstrings"}
    # The updated index equals a fresh build of the same corpus: chunks, vectors, sentence vectors, keyword scores.
    fresh = settings.model_copy(update={"data_dir": tmp_path / "fresh"})
    _ingest(fresh, corpus_dir)
    assert _snapshot(settings) == _snapshot(fresh)
    a = search_files.read(IndexPaths.for_data_dir(settings.data_dir).current().root)  # type: ignore[union-attr]
    b = search_files.read(IndexPaths.for_data_dir(fresh.data_dir).current().root)  # type: ignore[union-attr]
    assert a.mentions == b.mentions and a.vocabulary == b.vocabulary
    rows_a, rows_b = {c: i for i, c in enumerate(a.chunk_ids)}, {c: i for i, c in enumerate(b.chunk_ids)}
    for q in ["hamstring curls", "glute bridge", "protein muscle"]:
        toks = [t for t in keyword_tokens(q) if t in a.bm25.vocab_dict]
        sa, sb = a.bm25.get_scores(toks), b.bm25.get_scores(toks)
        assert all(sa[rows_a[c]] == sb[rows_b[c]] for c in rows_b)


def test_deleting_an_article_removes_its_shard_and_reprocesses_nothing(settings: Settings, corpus_dir: Path,
                                                                       reprocessed: list[int]) -> None:
    _ingest(settings, corpus_dir)
    (corpus_dir / "003_c92f3383a1a91ea7.txt").unlink()
    report = _ingest(settings, corpus_dir)
    assert reprocessed == [5, 0]
    assert report.articles["does-running-help-hamstrings"].deleted > 0
    cur = IndexPaths.for_data_dir(settings.data_dir).current()
    assert cur is not None and not (cur.shards / "does-running-help-hamstrings.json").exists()
    assert "does-running-help-hamstrings" not in open_index(settings.data_dir, settings.embedding_model).articles


def test_an_older_format_is_rebuilt_by_a_plain_ingest(settings: Settings, corpus_dir: Path,
                                                      reprocessed: list[int]) -> None:
    _ingest(settings, corpus_dir)
    cur = IndexPaths.for_data_dir(settings.data_dir).current()
    assert cur is not None
    raw = json.loads(cur.manifest.read_text(encoding="utf-8"))
    cur.manifest.write_text(json.dumps({**raw, "format": 4}), encoding="utf-8")
    report = _ingest(settings, corpus_dir)
    assert report.rebuilt and reprocessed == [5, 5]


def test_a_crash_mid_ingest_leaves_the_published_version_whole(settings: Settings, corpus_dir: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    _ingest(settings, corpus_dir)
    before = _snapshot(settings)
    target = corpus_dir / "003_c92f3383a1a91ea7.txt"
    target.write_text(target.read_text(encoding="utf-8") + "\nA new closing line.\n", encoding="utf-8")

    def crash(*_: Any, **__: Any) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(search_files, "write", crash)
    with pytest.raises(KeyboardInterrupt):
        _ingest(settings, corpus_dir)
    assert _snapshot(settings) == before  # the hard-linked shards were never written through
    monkeypatch.undo()
    report = _ingest(settings, corpus_dir)
    assert {aid for aid, c in report.articles.items() if c.added} == {"does-running-help-hamstrings"}


def test_the_vectorised_bm25_equals_bm25s_own() -> None:
    texts = [p for p in (CORPUS / "002_32a1229ae178e6c8.txt").read_text(encoding="utf-8").split("\n\n")
             if p.strip()]
    built = search_files.update(None, set(), [], [str(i) for i in range(len(texts))], texts, []).files.bm25
    ref = bm25s.BM25()
    ref.index([keyword_tokens(t) or ["_"] for t in texts], show_progress=False)
    for q in ["squat knee", "hip", "calf raise strength"]:
        toks = [t for t in keyword_tokens(q) if t in ref.vocab_dict]
        assert np.array_equal(built.get_scores(toks), ref.get_scores(toks))


class _Helper:
    """Stands in for the helper process (``HelperEmbedding``): embeds here, when waited for."""

    def __init__(self, embeddings: SentenceEmbeddings, texts: list[str]) -> None:
        self.embeddings, self.texts, self.waited, self.closed = embeddings, texts, False, False

    def wait(self) -> None:
        self.waited = True
        self.embeddings.prefetch(self.texts)

    def close(self) -> None:
        self.closed = True


def test_an_update_hands_only_its_new_texts_to_the_helper_and_publishes_a_fresh_builds_index(
        settings: Settings, corpus_dir: Path, tmp_path: Path) -> None:
    helpers: list[_Helper] = []

    class Deferred(SentenceEmbeddings):
        def prefetch_in_helper(self, texts: list[str]) -> Any:
            helpers.append(_Helper(self, texts))
            return helpers[-1]

    model = HashingModel()
    s = settings.model_copy(update={"corpus_dir": corpus_dir})
    run_ingest(s, embeddings_factory=lambda name, batch: Deferred(name, batch, model=model))
    assert helpers == []  # a first build embeds everything here, with a progress bar
    target = corpus_dir / "003_c92f3383a1a91ea7.txt"
    line = "Hamstring curls twice a week help runners."
    target.write_text(target.read_text(encoding="utf-8") + f"\n{line}\n", encoding="utf-8")
    run_ingest(s, embeddings_factory=lambda name, batch: Deferred(name, batch, model=model))
    assert len(helpers) == 1 and helpers[0].waited and helpers[0].closed
    assert line in helpers[0].texts and all(line in t for t in helpers[0].texts)  # the rest was reused
    fresh = settings.model_copy(update={"data_dir": tmp_path / "fresh"})
    _ingest(fresh, corpus_dir)
    assert _snapshot(settings) == _snapshot(fresh)


def test_the_service_holds_chunk_vectors_once_and_reads_sentence_vectors_unmapped(fake_index: Settings) -> None:
    from service.answering.engine import open_search_index

    index = open_search_index(fake_index, fake_index.embedding_model)
    snap = index.snapshot
    assert type(snap.vectors) is np.ndarray and index.chunk_vectors is snap.vectors  # in memory, not mapped
    assert all(np.shares_memory(sc.embedding, snap.vectors) for sc in snap.chunks)  # one copy, not two
    for aid in list(snap.articles)[:2]:
        on_disk = np.load(snap.root / "chunks" / f"{aid}.sentences.npy")  # type: ignore[operator]
        ours = [sc for sc in snap.chunks if sc.chunk.article_id == aid]
        read = [snap.sentences.of(sc.chunk_id) for sc in ours]
        assert not any(isinstance(r, np.memmap) for r in read)
        assert np.array_equal(np.concatenate(read), on_disk)
    index.close()


def test_the_helper_process_embeds_as_this_process_does(real_settings: Settings) -> None:
    from ingest.embedding import HelperEmbedding, embeddings_for

    texts = ["The hamstrings flex the knee.", "Glute bridges train the hips.", "A longer sentence " * 12]
    here = embeddings_for(real_settings)
    here.prefetch(texts)
    there = embeddings_for(real_settings)
    helper = there.prefetch_in_helper(texts)
    assert isinstance(helper, HelperEmbedding)
    helper.wait()
    assert not there.loaded  # the vectors came from the helper: this process never loaded the model
    assert np.array_equal(np.asarray(there.embed_documents(texts)), np.asarray(here.embed_documents(texts)))
