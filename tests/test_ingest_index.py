"""The index stays correct as articles are added, edited and removed, and bad input never touches it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ingest.errors import CorpusFileInvalid, CorpusMissing, DuplicateArticleId, ModelMismatch, ModelMissing
from ingest.pipeline import run_ingest
from ingest.settings import Settings
from ingest.store import IndexPaths, open_index
from tests.fakes import HashingModel, fake_embeddings_factory


def ingest(settings: Settings, **kw):
    return run_ingest(settings, embeddings_factory=fake_embeddings_factory(), **kw)


def commit_of(settings: Settings) -> dict:
    current = IndexPaths.for_data_dir(settings.data_dir).current()
    assert current is not None
    return json.loads(current.manifest.read_text())


def test_first_ingest_indexes_every_chunk_and_second_is_a_no_op(settings: Settings) -> None:
    first = ingest(settings)
    assert first.num_added > 50 and first.num_deleted == 0
    second = ingest(settings)
    assert (second.num_added, second.num_updated, second.num_deleted) == (0, 0, 0)
    assert second.num_skipped == first.num_added
    assert second.index_version == first.index_version


def test_no_op_reingest_never_embeds(settings: Settings) -> None:
    ingest(settings)
    model = HashingModel()
    run_ingest(settings, embeddings_factory=fake_embeddings_factory(model))
    assert model.texts_encoded == 0


def test_editing_one_article_reembeds_only_that_article(settings: Settings) -> None:
    ingest(settings)
    path = settings.corpus_dir / "003_c92f3383a1a91ea7.txt"
    path.write_text(
        path.read_text(encoding="utf-8") + "\n\nA new closing line about hamstring curls.\n", encoding="utf-8"
    )
    report = ingest(settings)
    changed = {aid for aid, c in report.articles.items() if c.added or c.deleted}
    assert changed == {"does-running-help-hamstrings"}
    assert report.num_added >= 1
    assert (
        report.articles["what-muscles-does-running-work"].skipped
        == report.articles["what-muscles-does-running-work"].chunks
    )
    snap = open_index(settings.data_dir, settings.embedding_model)
    assert "hamstring curls" in snap.articles["does-running-help-hamstrings"].text


def test_deleting_an_article_removes_its_chunks(settings: Settings) -> None:
    ingest(settings)
    (settings.corpus_dir / "003_c92f3383a1a91ea7.txt").unlink()
    report = ingest(settings)
    assert report.articles["does-running-help-hamstrings"].deleted > 0
    assert report.articles["does-running-help-hamstrings"].chunks == 0
    snap = open_index(settings.data_dir, settings.embedding_model)
    assert "does-running-help-hamstrings" not in snap.articles
    assert all(c.chunk.article_id != "does-running-help-hamstrings" for c in snap.chunks)


def test_adding_a_markdown_article_without_manifest_entry(settings: Settings) -> None:
    ingest(settings)
    (settings.corpus_dir / "calf-raises.md").write_text(
        "# Calf Raises for Runners\n\n## Why\n\nCalf raises strengthen the soleus for push-off.\n", encoding="utf-8"
    )
    report = ingest(settings)
    assert report.articles["calf-raises"].added == 1
    snap = open_index(settings.data_dir, settings.embedding_model)
    assert snap.articles["calf-raises"].title == "Calf Raises for Runners"


def test_adding_an_html_article_uses_the_main_text_extractor(settings: Settings) -> None:
    body = " ".join(["Calf raises strengthen the soleus and the gastrocnemius for a stronger push-off."] * 4)
    html = (
        "<html><head><title>Calf Raises</title></head><body><nav>Home | Shop | Login</nav>"
        f"<article><h1>Calf Raises</h1><h2>Why they help</h2><p>{body}</p><p>{body}</p></article>"
        "<footer>Copyright 2026 Example Site</footer></body></html>"
    )
    (settings.corpus_dir / "calf.html").write_text(html, encoding="utf-8")
    ingest(settings)
    snap = open_index(settings.data_dir, settings.embedding_model)
    text = snap.articles["calf"].text
    assert "soleus and the gastrocnemius" in text
    assert "Shop | Login" not in text


BAD_FILES = [
    ("empty.txt", b"", CorpusFileInvalid, "empty"),
    ("blank.txt", b"   \n\n  ", CorpusFileInvalid, "empty"),
    ("binary.txt", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", CorpusFileInvalid, "binary"),
    ("latin1.txt", "Caf\u00e9 au lait for runners".encode("latin-1"), CorpusFileInvalid, "UTF-8"),
    ("huge.txt", b"Running works the glutes. " * 200_000, CorpusFileInvalid, "limit"),
]


@pytest.mark.parametrize(("name", "data", "error", "words"), BAD_FILES)
def test_bad_file_is_a_clear_error_and_leaves_the_index_untouched(
    settings: Settings, name: str, data: bytes, error: type, words: str
) -> None:
    ingest(settings)
    before = commit_of(settings)
    (settings.corpus_dir / name).write_bytes(data)
    with pytest.raises(error) as info:
        ingest(settings)
    message = str(info.value)
    assert name in message and words in message and "\n" not in message
    assert commit_of(settings) == before
    assert len(open_index(settings.data_dir, settings.embedding_model).chunks) == before["num_chunks"]


def test_duplicate_article_id_names_both_files(settings: Settings) -> None:
    (settings.corpus_dir / "what-muscles.txt").write_text("Title\n\nBody text here.\n", encoding="utf-8")
    manifest = json.loads((settings.corpus_dir / "manifest.json").read_text())
    manifest.append({"id": "what-muscles-does-running-work", "file": "what-muscles.txt"})
    (settings.corpus_dir / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(DuplicateArticleId) as info:
        ingest(settings)
    assert "what-muscles.txt" in str(info.value) and "000_cc84e308996c28ef.txt" in str(info.value)
    assert IndexPaths.for_data_dir(settings.data_dir).current() is None


def test_missing_corpus_dir(settings: Settings, tmp_path: Path) -> None:
    with pytest.raises(CorpusMissing, match="does not exist"):
        run_ingest(settings, corpus_dir=tmp_path / "nope", embeddings_factory=fake_embeddings_factory())


def test_missing_embedding_model_fails_before_writing(settings: Settings, tmp_path: Path) -> None:
    bad = settings.model_copy(update={"embedding_model": str(tmp_path / "no-such-model")})
    with pytest.raises(ModelMissing, match="STRIDE_EMBEDDING_MODEL"):
        run_ingest(bad)
    assert IndexPaths.for_data_dir(settings.data_dir).current() is None


def test_a_different_model_is_refused_until_rebuild(settings: Settings) -> None:
    ingest(settings)
    other = settings.model_copy(update={"embedding_model": "other-model"})
    with pytest.raises(ModelMismatch, match="stride ingest --rebuild"):
        ingest(other)
    with pytest.raises(ModelMismatch, match="stride ingest --rebuild"):
        open_index(settings.data_dir, "other-model")
    report = ingest(other, rebuild=True)
    assert report.rebuilt and report.num_added > 0
    assert open_index(settings.data_dir, "other-model").model == "other-model"


def test_a_no_op_ingest_keeps_the_same_version_directory(settings: Settings) -> None:
    ingest(settings)
    paths = IndexPaths.for_data_dir(settings.data_dir)
    first = paths.current()
    ingest(settings)
    assert paths.current() == first
    assert [p.name for p in paths.versions.iterdir()] == [first.root.name]  # type: ignore[union-attr]
    assert not list(paths.root.glob("staging-*"))


def test_a_failed_update_leaves_current_and_cleans_its_staging(settings: Settings) -> None:
    ingest(settings)
    paths = IndexPaths.for_data_dir(settings.data_dir)
    before = paths.current()

    class Exploding(HashingModel):
        def encode(self, texts, **kw):
            raise RuntimeError("disk full")

    path = settings.corpus_dir / "003_c92f3383a1a91ea7.txt"
    path.write_text(path.read_text(encoding="utf-8") + "\n\nAn edit.\n", encoding="utf-8")
    with pytest.raises(RuntimeError, match="disk full"):
        run_ingest(settings, embeddings_factory=fake_embeddings_factory(Exploding()))
    assert paths.current() == before
    assert not list(paths.root.glob("staging-*"))
    assert (
        "An edit."
        not in open_index(settings.data_dir, settings.embedding_model).articles["does-running-help-hamstrings"].text
    )


def test_a_no_op_ingest_decides_from_hashes_without_opening_the_index(settings: Settings) -> None:
    ingest(settings)
    current = IndexPaths.for_data_dir(settings.data_dir).current()
    assert current is not None
    hidden = current.root / "chroma-hidden"
    (current.root / "chroma").rename(hidden)  # a no-op must not need the vector store at all
    try:
        report = ingest(settings)
    finally:
        hidden.rename(current.root / "chroma")
    assert report.num_added == report.num_deleted == 0 and report.num_skipped > 50
    assert IndexPaths.for_data_dir(settings.data_dir).current_id() == current.version_id


def test_changing_how_articles_are_chunked_is_not_mistaken_for_a_no_op(settings: Settings) -> None:
    ingest(settings)
    report = ingest(settings.model_copy(update={"chunk_target_chars": 600}))
    assert report.num_added > 0 and report.num_deleted > 0
