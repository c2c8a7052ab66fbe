"""load -> clean -> structure -> chunk -> embed -> index, with I/O at the two ends."""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from ingest import search_files
from ingest.articles import build_article
from ingest.chunking import chunk_article
from ingest.corpus import CorpusFile, decode_file, list_corpus, read_corpus
from ingest.embedding import SentenceEmbeddings, embeddings_for
from ingest.errors import IndexMissing, ModelMismatch, PlantedInstructions
from ingest.fingerprint import code_hash, source_fingerprint
from ingest.lexicon import LEXICON_NAME, Lexicon
from ingest.models import Article, Chunk
from ingest.records import ArticleRecord, Manifest, ManifestArticle
from ingest.settings import Settings
from ingest.shards import (
    ShardInfo,
    content_key,
    read_shard,
    read_summary,
    read_terms,
    remove_shard,
    write_shard,
    write_summary,
)
from ingest.store import (
    COLLECTION,
    FORMAT_VERSION,
    RECORD_NAMESPACE,
    IndexPaths,
    VersionPaths,
    chunk_from_metadata,
    chunk_id,
    chunk_metadata,
    ingest_lock,
    now_iso,
    open_chroma,
    stage_from,
    write_json_atomic,
)

log = logging.getLogger(__name__)
# Up to this many texts to embed, an update embeds them in a helper process while it does the rest (the
# import and load of the model take seconds of one core). Past it the embedding itself dominates, and it
# runs here, with a progress bar.
HELPER_MAX_TEXTS = 2000
LOCK_WAIT_S = 10.0  # a running server's clean-up holds the ingest lock only for renames


class Progress(Protocol):
    def stage(self, name: str, total: int | None) -> None: ...
    def advance(self, n: int = 1) -> None: ...


class _NoProgress:
    def stage(self, name: str, total: int | None) -> None:
        log.info("%s", name)

    def advance(self, n: int = 1) -> None:
        pass


@dataclass
class ArticleCounts:
    added: int = 0
    skipped: int = 0
    deleted: int = 0
    chunks: int = 0


@dataclass
class IngestReport:
    num_added: int
    num_updated: int
    num_skipped: int
    num_deleted: int
    articles: dict[str, ArticleCounts] = field(default_factory=dict)
    index_version: str = ""
    model: str = ""
    rebuilt: bool = False
    planted: list[dict[str, Any]] = field(default_factory=list)  # file, line, rule, text of each hit

    def as_dict(self) -> dict[str, Any]:
        return {
            "num_added": self.num_added,
            "num_updated": self.num_updated,
            "num_skipped": self.num_skipped,
            "num_deleted": self.num_deleted,
            "index_version": self.index_version,
            "model": self.model,
            "rebuilt": self.rebuilt,
            "articles": {k: vars(v) for k, v in sorted(self.articles.items())},
            "planted": self.planted,
        }


def prepare(settings: Settings, corpus_dir: Path) -> tuple[list[Article], list[Chunk]]:
    """Read and process the whole corpus in memory; raises on bad input before anything is written."""
    docs = read_corpus(corpus_dir, settings.max_file_bytes)
    articles = [build_article(d) for d in docs]
    chunks = [
        c for a in articles for c in chunk_article(a, settings.chunk_target_chars, settings.chunk_max_chars)
    ]
    return articles, chunks


def _to_document(chunk: Chunk) -> Any:
    from langchain_core.documents import Document

    return Document(page_content=chunk.embedding_text(), metadata=chunk_metadata(chunk))


def _record_id(doc: Any) -> str:
    return chunk_id(doc.page_content, doc.metadata)


def _ann_store(collection: Any, embeddings: SentenceEmbeddings) -> Any:
    """A LangChain vector store over ``collection`` that keeps what its ANN search needs (id, vector,
    article id) and nothing else: the chunks themselves live in the version's shards."""
    from langchain_core.vectorstores import VectorStore

    class AnnVectors(VectorStore):
        @property
        def embeddings(self) -> Any:
            return embeddings

        def add_documents(self, documents: list[Any], **kwargs: Any) -> list[str]:
            ids = list(kwargs["ids"])
            vectors = embeddings.embed_documents([d.page_content for d in documents])
            collection.upsert(ids=ids, embeddings=vectors, metadatas=[{"article_id": d.metadata["article_id"]}
                                                                       for d in documents])
            return ids

        def add_texts(self, texts: Any, metadatas: Any = None, **kwargs: Any) -> list[str]:
            raise NotImplementedError("only LangChain's index() writes here, by add_documents")

        def delete(self, ids: list[str] | None = None, **kwargs: Any) -> bool | None:
            for i in range(0, len(ids or []), 1000):
                collection.delete(ids=list(ids or [])[i : i + 1000])
            return True

        def similarity_search(self, query: str, k: int = 4, **kwargs: Any) -> list[Any]:
            raise NotImplementedError("only LangChain's index() writes here, by add_documents")

        @classmethod
        def from_texts(cls, texts: Any, embedding: Any, metadatas: Any = None, **kwargs: Any) -> Any:
            raise NotImplementedError("only LangChain's index() writes here, by add_documents")

    return AnnVectors()


class _Stores:
    """Chroma (the ANN over chunk vectors) and the record manager of one version directory."""

    def __init__(self, version: VersionPaths, embeddings: SentenceEmbeddings) -> None:
        from langchain_classic.indexes import SQLRecordManager

        version.root.mkdir(parents=True, exist_ok=True)
        self.client = open_chroma(version.chroma)
        if COLLECTION in {c.name for c in self.client.list_collections()}:
            built_with = (self.client.get_collection(COLLECTION).metadata or {}).get("stride_model")
            if built_with != embeddings.name:
                self.close()
                raise ModelMismatch(
                    f"the index was built with embedding model {built_with!r}, not {embeddings.name!r}"
                    " — run `stride ingest --rebuild`"
                )
        self.collection = self.client.get_or_create_collection(
            COLLECTION, metadata={"stride_model": embeddings.name}, configuration={"hnsw": {"space": "cosine"}}
        )
        self.vectors = _ann_store(self.collection, embeddings)
        self.records = SQLRecordManager(RECORD_NAMESPACE, db_url=f"sqlite:///{version.records}")
        self.records.create_schema()

    def close(self) -> None:
        self.client.close()
        if hasattr(self, "records"):
            self.records.engine.dispose()


def sentence_texts(chunk: Chunk) -> list[str]:
    """What is embedded for each sentence of ``chunk`` (none for reference lists)."""
    if chunk.is_reference:
        return []
    return [chunk.text[s:e] for s, e in chunk.sentences]


@dataclass
class _Plan:
    """What an ingest does to the previous version: the articles to (re)process, those kept as they are,
    and those gone from the corpus."""

    keys: dict[str, str]  # article id -> content key, every article in the corpus
    files: dict[str, CorpusFile]
    changed: list[str]
    kept: list[str]
    removed: list[str]


def _plan(settings: Settings, corpus_dir: Path, model: str, previous: dict[str, ShardInfo]) -> _Plan:
    config = f"{FORMAT_VERSION}\0{model}\0{settings.chunk_target_chars}\0{settings.chunk_max_chars}\0" \
             f"{settings.max_file_bytes}\0{code_hash()}"
    files = {f.article_id: f for f in list_corpus(corpus_dir)}
    keys = {aid: content_key(f.path.name, f.data, f.manifest, config) for aid, f in files.items()}
    changed = [aid for aid in files if aid not in previous or previous[aid].key != keys[aid]]
    kept = [aid for aid in files if aid not in changed]
    return _Plan(keys, files, changed, kept, sorted(set(previous) - set(files)))


def count_reprocessed(n: int) -> None:
    """Called with the number of articles an ingest cleans and chunks (a seam for tests to count)."""


def _prepare_changed(settings: Settings, plan: _Plan) -> list[tuple[Article, list[Chunk]]]:
    count_reprocessed(len(plan.changed))
    out = []
    for aid in plan.changed:
        article = build_article(decode_file(plan.files[aid], settings.max_file_bytes))
        chunks = chunk_article(article, settings.chunk_target_chars, settings.chunk_max_chars)
        out.append((article, sorted(chunks, key=lambda c: c.position)))
    return out


def _reuse_vectors(root: Path, article_ids: list[str], embeddings: SentenceEmbeddings) -> None:
    """Hand the embedder the vectors the previous version has for these articles' chunk and sentence texts:
    an edited article's unchanged paragraphs are not embedded again."""
    for aid in article_ids:
        try:
            shard = read_shard(root, aid)
        except (OSError, ValueError):
            continue
        chunks = [chunk_from_metadata(m) for m in shard.metadatas]
        embeddings.remember([c.embedding_text() for c in chunks], np.asarray(shard.vectors))
        texts = [t for c in chunks for t in sentence_texts(c)]
        embeddings.remember(texts, np.asarray(shard.sentences))


def _update_version(
    version: VersionPaths,
    current: VersionPaths | None,
    previous: Manifest | None,
    plan: _Plan,
    prepared: list[tuple[Article, list[Chunk]]],
    embeddings: SentenceEmbeddings,
    progress: Progress,
    batch_size: int,
    fingerprint: str | None = None,
) -> tuple[IngestReport, search_files.Built | None]:
    """Stage ``version`` from ``current`` (the published version ``previous`` describes; None for a fresh
    index) and bring it in line with the corpus: only the changed articles' chunks are embedded, added to
    Chroma and written as shards; the kept articles' shards stay as they are. Writes its manifest; returns
    the report and the updated keyword side (None if nothing changed)."""
    source = current if previous is not None else None
    summary = read_summary(source.root) if source is not None else {}
    before = {aid: set(summary[aid].ids) for aid in [*plan.changed, *plan.removed] if aid in summary}
    new_docs = [_to_document(c) for _, chunks in prepared for c in chunks]
    new_ids = {a.article_id: [_record_id(_to_document(c)) for c in chunks] for a, chunks in prepared}
    if source is not None:
        _reuse_vectors(source.root, [aid for aid in plan.changed if aid in summary], embeddings)
    missing = embeddings.unknown([t for _, chunks in prepared for c in chunks
                                  for t in [c.embedding_text(), *sentence_texts(c)]])
    helper = None
    if missing and previous is not None and len(missing) <= HELPER_MAX_TEXTS:
        # An update with little to embed: the model's import and load (seconds) run in a helper process on
        # the other core while this one updates Chroma's deletions, the keyword index and the articles.
        helper = embeddings.prefetch_in_helper(missing)
        if helper is not None:
            progress.stage(f"embedding {len(missing)} new texts (chunks and sentences) of "
                           f"{len(plan.changed)} articles in a helper process", None)
    stores = None
    try:
        if source is not None:
            stage_from(source, version)
        else:
            version.root.mkdir(parents=True)
        if missing and helper is None:
            progress.stage(f"loading embedding model {embeddings.name}", None)
            embeddings.model  # noqa: B018 -- load now, so the bar below counts only embedding
            progress.stage(f"embedding {len(missing)} new texts (chunks and sentences) of "
                           f"{len(plan.changed)} articles", len(missing))
            embeddings.on_batch = progress.advance
            try:
                embeddings.prefetch(missing)
            finally:
                embeddings.on_batch = None

        stores = _Stores(version, embeddings)
        gone = sorted(cid for aid, ids in before.items() for cid in ids - set(new_ids.get(aid, ())))
        stores.vectors.delete(gone)
        stores.records.delete_keys(gone)
        old_terms = [read_terms(version.root, aid) for aid in before]
        new_terms = [search_files.ArticleTerms.of(chunks, [c.embedding_text() for c in chunks])
                     for _, chunks in prepared]
        built = None
        if prepared or plan.removed or previous is None:
            progress.stage("updating the keyword index", None)
            base = None
            if previous is not None:
                try:
                    base = search_files.read_built(version.root)
                except FileNotFoundError:
                    base = None
            if base is None and previous is not None:
                raise IndexMissing("the keyword index of the previous version is missing"
                                   " — run `stride ingest --rebuild`")
            added = [(cid, c) for a, chunks in prepared for cid, c in zip(new_ids[a.article_id], chunks, strict=True)]
            built = search_files.update(base, {cid for ids in before.values() for cid in ids}, old_terms,
                                        [cid for cid, _ in added], [c.embedding_text() for _, c in added], new_terms)
        for article, _ in prepared:
            write_json_atomic(version.article(article.article_id),
                              ArticleRecord.of(article).model_dump(exclude={"ingested_at"}))

        from langchain_core.indexing import index

        if helper is not None:
            helper.wait()
        result = index(new_docs, stores.records, stores.vectors, cleanup=None, source_id_key="article_id",
                       batch_size=batch_size, key_encoder=_record_id)
    finally:
        if helper is not None:
            helper.close()
        if stores is not None:
            stores.close()

    for (article, chunks), terms in zip(prepared, new_terms, strict=True):
        texts = [c.embedding_text() for c in chunks]
        sent = [t for c in chunks for t in sentence_texts(c)]
        write_shard(version.root, article.article_id, new_ids[article.article_id],
                    [chunk_metadata(c) for c in chunks],
                    np.asarray(embeddings.embed_documents(texts), dtype=np.float32).reshape(len(texts), -1),
                    np.asarray(embeddings.embed_documents(sent), dtype=np.float32).reshape(len(sent), -1), terms)
        summary[article.article_id] = ShardInfo(
            plan.keys[article.article_id], new_ids[article.article_id],
            [{"line": p.line, "rule": p.rule, "text": p.text} for p in article.planted])
    for aid in plan.removed:
        remove_shard(version.root, aid)
        version.article(aid).unlink(missing_ok=True)
        summary.pop(aid, None)
    write_summary(version.root, summary)

    per_article: dict[str, ArticleCounts] = {}
    for aid in sorted(set(summary) | set(plan.removed)):
        after = set(summary[aid].ids) if aid in summary else set()
        was = before.get(aid, after if aid in plan.kept else set())
        per_article[aid] = ArticleCounts(added=len(after - was), skipped=len(after & was),
                                         deleted=len(was - after), chunks=len(after))
    all_ids = sorted(cid for info in summary.values() for cid in info.ids)
    version_hash = hashlib.sha256("\n".join(all_ids).encode()).hexdigest()[:16]

    old = previous.articles if previous else {}
    stamp = now_iso()
    by_id = {a.article_id: a for a, _ in prepared}

    def entry(aid: str) -> ManifestArticle:
        a = by_id.get(aid)
        if a is None:  # kept: as the previous version recorded it
            return old[aid]
        before = old.get(aid)
        # "Last ingested" moves only when the article's content did.
        at = before.ingested_at if before is not None and before.sha == a.sha and before.ingested_at else stamp
        return ManifestArticle(title=a.title, file=a.file, publisher=a.publisher, author=a.author, sha=a.sha,
                               num_chunks=len(summary[aid].ids), ingested_at=at)

    manifest = Manifest(
        format=FORMAT_VERSION,
        model=embeddings.name,
        dim=embeddings.dimension if embeddings.loaded else (previous.dim if previous else None),
        collection=COLLECTION,
        index_version=version_hash,
        built_at=stamp,
        num_chunks=len(all_ids),
        source_fingerprint=fingerprint,
        # In the corpus's own order, as listed: reports and the coverage heatmap show articles so.
        articles={aid: entry(aid) for aid in plan.files if aid in summary},
    )
    write_json_atomic(version.manifest, manifest.model_dump())
    kept_chunks = sum(len(summary[aid].ids) for aid in plan.kept)
    report = IngestReport(
        num_added=result["num_added"],
        num_updated=result["num_updated"],
        num_skipped=result["num_skipped"] + kept_chunks,
        num_deleted=len(gone),
        articles=per_article,
        index_version=version_hash,
        model=embeddings.name,
        planted=[{"file": manifest.articles[aid].file, **p} for aid in sorted(summary) for p in summary[aid].planted],
    )
    return report, built


def _unchanged(settings: Settings, fingerprint: str, model: str) -> IngestReport | None:
    """The report of an ingest with nothing to do, from the published version alone; None unless its
    fingerprint is ``fingerprint``."""
    if settings.chroma_url:
        from ingest.chroma_server import ChromaServer

        server = ChromaServer.connect(settings.chroma_url)
        vid = server.current_id()
        rec = server.read_version(vid) if vid else None
        if rec is None or rec.manifest.get("source_fingerprint") != fingerprint:
            return None
        manifest = Manifest.model_validate(rec.manifest)
        texts = server.articles([f"{aid}@{a.sha}" for aid, a in manifest.articles.items()])
        records = {aid: ArticleRecord.model_validate_json(texts[f"{aid}@{a.sha}"])
                   for aid, a in manifest.articles.items()}
        planted = [{"file": manifest.articles[aid].file, "line": p.line, "rule": p.rule, "text": p.text}
                   for aid, rec in records.items() for p in rec.planted]
    else:
        lease = IndexPaths.for_data_dir(settings.data_dir).lease_current()
        if lease is None:
            return None
        try:
            raw = json.loads(lease.version.manifest.read_text(encoding="utf-8"))
            if raw.get("source_fingerprint") != fingerprint or raw.get("format") != FORMAT_VERSION:
                return None
            manifest = Manifest.model_validate(raw)
            summary = read_summary(lease.version.root)
        finally:
            lease.close()
        planted = [{"file": manifest.articles[aid].file, **p} for aid in sorted(summary) for p in summary[aid].planted]
    if manifest.model != model:
        return None  # the full run says what to do about another model
    return IngestReport(
        num_added=0, num_updated=0, num_skipped=manifest.num_chunks, num_deleted=0,
        articles={aid: ArticleCounts(skipped=a.num_chunks, chunks=a.num_chunks)
                  for aid, a in manifest.articles.items()},
        index_version=manifest.index_version, model=manifest.model,
        planted=planted,
    )


def _copy_lexicon(corpus_dir: Path, staged: VersionPaths, current: VersionPaths | None) -> bool:
    """Ship the corpus lexicon inside the version, so the service reads only the index; True if it changed."""
    source = corpus_dir / LEXICON_NAME
    Lexicon.load(corpus_dir)  # validate before publishing
    new = source.read_bytes() if source.exists() else b""
    old = current.lexicon.read_bytes() if current is not None and current.lexicon.exists() else b""
    staged.lexicon.unlink(missing_ok=True)
    if new:
        staged.lexicon.write_bytes(new)
    return new != old


def run_ingest(
    settings: Settings,
    corpus_dir: Path | None = None,
    rebuild: bool = False,
    progress: Progress | None = None,
    embeddings_factory: Callable[[str, int], SentenceEmbeddings] | None = None,
    strict: bool = False,
) -> IngestReport:
    """Bring the index in ``settings.data_dir`` in line with the corpus.

    Bad input raises before anything is written. The update runs on a copy of the current version
    and is published by an atomic symlink swap, so readers never see a half-written index.
    ``embeddings_factory`` (name, batch size) is the seam for another model; default: the real one.
    """
    progress = progress or _NoProgress()
    corpus_dir = corpus_dir or settings.corpus_dir
    embeddings = (embeddings_factory(settings.embedding_model, settings.embed_batch_size) if embeddings_factory
                  else embeddings_for(settings))  # lazy: nothing is loaded until something is embedded
    fingerprint = source_fingerprint(settings, corpus_dir, embeddings.name, FORMAT_VERSION)
    if not rebuild and not strict and fingerprint is not None:
        unchanged = _unchanged(settings, fingerprint, embeddings.name)
        if unchanged is not None:
            return unchanged
    if settings.chroma_url:
        return _ingest_to_server(settings, corpus_dir, embeddings, progress, rebuild, strict, fingerprint)
    paths = IndexPaths.for_data_dir(settings.data_dir)
    with ingest_lock(paths, wait_s=LOCK_WAIT_S):
        paths.collect_garbage()
        current = None if rebuild else paths.current()
        previous: Manifest | None = None
        if current is not None and current.manifest.exists():
            raw = json.loads(current.manifest.read_text(encoding="utf-8"))
            if raw.get("format") != FORMAT_VERSION:
                # Our own format changed (not a user choice): rebuild rather than make the user do it.
                log.warning("index format %s is outdated; rebuilding", raw.get("format"))
                current, rebuild = None, True
            else:
                previous = Manifest.model_validate(raw)
                if previous.model != embeddings.name:
                    raise ModelMismatch(
                        f"the index was built with embedding model {previous.model!r}, not {embeddings.name!r}"
                        " — run `stride ingest --rebuild`"
                    )
        progress.stage("reading and chunking the changed articles", None)
        plan = _plan(settings, corpus_dir, embeddings.name, read_summary(current.root) if previous and current else {})
        prepared = _prepare_changed(settings, plan)  # bad input raises here, before anything is written
        if current is None:
            # Everything will be embedded: overlap the slow import with staging. Not before the input is
            # known good, so a bad file is its one-line error without torch being loaded for nothing.
            embeddings.preload_in_background()
        staged = paths.staging()
        try:
            report, built = _update_version(staged, current, previous, plan, prepared, embeddings, progress,
                                            settings.embed_batch_size, fingerprint)
            if strict and report.planted:
                first = report.planted[0]
                raise PlantedInstructions(
                    f"{corpus_dir / first['file']}:{first['line']}: instruction-like text ({first['rule']}) and"
                    f" {len(report.planted) - 1} more — remove it, or ingest without --strict to index it unanswerable"
                )
            lexicon_changed = _copy_lexicon(corpus_dir, staged, current)
            # A new fingerprint alone (say, a new Stride) publishes too, so the next run can skip at once.
            changed = (rebuild or current is None or report.num_added or report.num_deleted or lexicon_changed
                       or plan.removed or previous is None or previous.source_fingerprint != fingerprint)
            if changed:
                if built is not None:  # else the staged copy's (hard-linked) files are still right
                    search_files.write(staged.root, built)
                paths.publish(staged, f"{now_iso().replace(':', '')}-{report.index_version}")
        finally:
            shutil.rmtree(staged.root, ignore_errors=True)
        paths.collect_garbage()
    paths.empty_trash()
    report.rebuilt = rebuild
    return report


def _ingest_to_server(settings: Settings, corpus_dir: Path, embeddings: SentenceEmbeddings, progress: Progress,
                      rebuild: bool, strict: bool, fingerprint: str | None) -> IngestReport:
    """The Chroma-server path: the whole corpus prepared, then synced (ingest/server_ingest.py)."""
    from ingest.chroma_server import ChromaServer
    from ingest.server_ingest import ingest_to_server

    progress.stage("reading and chunking the corpus", None)
    articles, chunks = prepare(settings, corpus_dir)
    hits = [(a.file, p) for a in articles for p in a.planted]
    if strict and hits:
        file, first = hits[0]
        raise PlantedInstructions(
            f"{corpus_dir / file}:{first.line}: instruction-like text ({first.rule}) and {len(hits) - 1} more"
            " — remove it, or ingest without --strict to index it unanswerable"
        )
    planted = [{"file": file, "line": p.line, "rule": p.rule, "text": p.text} for file, p in hits]
    server = ChromaServer.connect(settings.chroma_url or "")
    report = ingest_to_server(server, corpus_dir, articles, chunks, embeddings, progress, rebuild, fingerprint)
    report.rebuilt, report.planted = rebuild, planted
    return report
