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

from ingest import search_files
from ingest.articles import build_article
from ingest.chunking import chunk_article
from ingest.corpus import read_corpus
from ingest.embedding import SentenceEmbeddings, embeddings_for
from ingest.errors import ModelMismatch, PlantedInstructions
from ingest.fingerprint import source_fingerprint
from ingest.lexicon import LEXICON_NAME, Lexicon
from ingest.models import Article, Chunk
from ingest.records import ArticleRecord, Manifest, ManifestArticle
from ingest.settings import Settings
from ingest.store import (
    COLLECTION,
    FORMAT_VERSION,
    RECORD_NAMESPACE,
    SENTENCE_COLLECTION,
    IndexPaths,
    VersionPaths,
    chunk_id,
    chunk_metadata,
    get_all,
    ingest_lock,
    now_iso,
    open_chroma,
    sentence_id,
    write_json_atomic,
)

log = logging.getLogger(__name__)


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


class _Stores:
    """Chroma (through langchain-chroma) and the record manager of one version directory."""

    def __init__(self, version: VersionPaths, embeddings: SentenceEmbeddings) -> None:
        from langchain_chroma import Chroma
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
        self.vectors = Chroma(
            collection_name=COLLECTION,
            embedding_function=embeddings,
            client=self.client,
            collection_metadata={"stride_model": embeddings.name},
            collection_configuration={"hnsw": {"space": "cosine"}},
        )
        self.records = SQLRecordManager(RECORD_NAMESPACE, db_url=f"sqlite:///{version.records}")
        self.records.create_schema()

    def keys_by_article(self, article_ids: list[str]) -> dict[str, set[str]]:
        return {aid: set(self.records.list_keys(group_ids=[aid])) for aid in article_ids}

    def close(self) -> None:
        self.client.close()
        if hasattr(self, "records"):
            self.records.engine.dispose()


def sentence_texts(chunk: Chunk) -> list[str]:
    """What is embedded for each sentence of ``chunk`` (none for reference lists)."""
    if chunk.is_reference:
        return []
    return [chunk.text[s:e] for s, e in chunk.sentences]


def _sync_sentences(stores: _Stores, chunks_by_id: dict[str, Chunk], embeddings: SentenceEmbeddings) -> None:
    """Keep one vector per sentence of every indexed chunk, so the service can score single
    sentences without embedding them at start-up. Only new chunks' sentences are embedded."""
    coll = stores.client.get_or_create_collection(
        SENTENCE_COLLECTION, metadata={"stride_model": embeddings.name}, configuration={"hnsw": {"space": "cosine"}}
    )
    have = get_all(coll, [])["ids"]  # "<chunk id>:<i>": the ids alone say which chunk each belongs to
    have_chunks = {sid.rsplit(":", 1)[0] for sid in have}
    live = set(chunks_by_id)
    stale = [sid for sid in have if sid.rsplit(":", 1)[0] not in live]
    for i in range(0, len(stale), 1000):
        coll.delete(ids=stale[i : i + 1000])
    ids, texts, metas = [], [], []
    for cid in sorted(live - have_chunks):
        chunk = chunks_by_id[cid]
        for i, text in enumerate(sentence_texts(chunk)):
            ids.append(sentence_id(cid, i))
            texts.append(text)
            metas.append({"chunk_id": cid, "i": i, "article_id": chunk.article_id})
    if not ids:
        return
    vectors = embeddings.embed_documents(texts)  # already prefetched with the chunks
    for i in range(0, len(ids), 1000):
        coll.add(ids=ids[i : i + 1000], embeddings=vectors[i : i + 1000], metadatas=metas[i : i + 1000],
                 documents=texts[i : i + 1000])


def _update_version(
    version: VersionPaths,
    previous: Manifest | None,
    articles: list[Article],
    chunks: list[Chunk],
    embeddings: SentenceEmbeddings,
    progress: Progress,
    batch_size: int,
    fingerprint: str | None = None,
) -> IngestReport:
    """Bring the index in ``version`` (a private copy) in line with ``articles``; write its manifest."""
    from langchain_core.indexing import index

    stores = _Stores(version, embeddings)
    try:
        known = sorted({a.article_id for a in articles} | set(previous.articles if previous else ()))
        before = stores.keys_by_article(known)
        docs = [_to_document(c) for c in chunks]
        present = stores.records.exists([_record_id(d) for d in docs])
        new_chunks = [c for c, p in zip(chunks, present, strict=True) if not p]
        if new_chunks:
            progress.stage(f"loading embedding model {embeddings.name}", None)
            embeddings.model  # noqa: B018 -- load now, so the bar below counts only embedding
            texts = [c.embedding_text() for c in new_chunks] + [s for c in new_chunks for s in sentence_texts(c)]
            progress.stage(f"embedding {len(new_chunks)} of {len(docs)} chunks and their sentences", len(texts))
            embeddings.on_batch = progress.advance
            try:
                embeddings.prefetch(texts)
            finally:
                embeddings.on_batch = None
        try:
            result = index(
                docs,
                stores.records,
                stores.vectors,
                cleanup="full",
                source_id_key="article_id",
                batch_size=batch_size,
                key_encoder=_record_id,
            )
        finally:
            embeddings.on_batch = None
        after = stores.keys_by_article(known)
        _sync_sentences(stores, {_record_id(d): c for d, c in zip(docs, chunks, strict=True)}, embeddings)
    finally:
        stores.close()

    per_article = {
        aid: ArticleCounts(
            added=len(after[aid] - before[aid]),
            skipped=len(after[aid] & before[aid]),
            deleted=len(before[aid] - after[aid]),
            chunks=len(after[aid]),
        )
        for aid in known
    }
    all_ids = sorted(set().union(*after.values())) if after else []
    version_hash = hashlib.sha256("\n".join(all_ids).encode()).hexdigest()[:16]
    old = previous.articles if previous else {}
    stamp = now_iso()
    if version.articles.exists():
        shutil.rmtree(version.articles)
    for a in articles:
        write_json_atomic(version.article(a.article_id), ArticleRecord.of(a).model_dump(exclude={"ingested_at"}))

    def ingested_at(a: Article) -> str:
        # "Last ingested" moves only when the article's content did.
        before = old.get(a.article_id)
        return before.ingested_at if before is not None and before.sha == a.sha and before.ingested_at else stamp

    manifest = Manifest(
        format=FORMAT_VERSION,
        model=embeddings.name,
        dim=embeddings.dimension if embeddings.loaded else (previous.dim if previous else None),
        collection=COLLECTION,
        index_version=version_hash,
        built_at=stamp,
        num_chunks=len(all_ids),
        source_fingerprint=fingerprint,
        articles={
            a.article_id: ManifestArticle(
                title=a.title, file=a.file, publisher=a.publisher, author=a.author, sha=a.sha,
                num_chunks=per_article[a.article_id].chunks, ingested_at=ingested_at(a),
            )
            for a in articles
        },
    )
    write_json_atomic(version.manifest, manifest.model_dump())
    return IngestReport(
        num_added=result["num_added"],
        num_updated=result["num_updated"],
        num_skipped=result["num_skipped"],
        num_deleted=result["num_deleted"],
        articles=per_article,
        index_version=version_hash,
        model=embeddings.name,
    )


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
    else:
        lease = IndexPaths.for_data_dir(settings.data_dir).lease_current()
        if lease is None:
            return None
        try:
            raw = json.loads(lease.version.manifest.read_text(encoding="utf-8"))
            if raw.get("source_fingerprint") != fingerprint or raw.get("format") != FORMAT_VERSION:
                return None
            manifest = Manifest.model_validate(raw)
            records = {aid: ArticleRecord.model_validate_json(lease.version.article(aid).read_text(encoding="utf-8"))
                       for aid in manifest.articles}
        finally:
            lease.close()
    if manifest.model != model:
        return None  # the full run says what to do about another model
    return IngestReport(
        num_added=0, num_updated=0, num_skipped=manifest.num_chunks, num_deleted=0,
        articles={aid: ArticleCounts(skipped=a.num_chunks, chunks=a.num_chunks)
                  for aid, a in manifest.articles.items()},
        index_version=manifest.index_version, model=manifest.model,
        planted=[{"file": manifest.articles[aid].file, "line": p.line, "rule": p.rule, "text": p.text}
                 for aid, rec in records.items() for p in rec.planted],
    )


def _search_files(chunks: list[Chunk]) -> search_files.SearchFiles:
    # In the order the service reads chunks back (article, then position), so BM25 rows line up.
    ordered = sorted(chunks, key=lambda c: (c.article_id, c.position))
    docs = [_to_document(c) for c in ordered]
    return search_files.build([_record_id(d) for d in docs], ordered, [d.page_content for d in docs])


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
    if settings.chroma_url:
        from ingest.chroma_server import ChromaServer
        from ingest.server_ingest import ingest_to_server

        server = ChromaServer.connect(settings.chroma_url)
        report = ingest_to_server(server, corpus_dir, articles, chunks, embeddings, progress, rebuild, fingerprint)
        report.rebuilt, report.planted = rebuild, planted
        return report
    paths = IndexPaths.for_data_dir(settings.data_dir)
    if rebuild or paths.current() is None:
        embeddings.preload_in_background()  # everything will be embedded: overlap the slow import
    with ingest_lock(paths):
        paths.collect_garbage()
        current = None if rebuild else paths.current()
        previous: Manifest | None = None
        if current is not None and current.manifest.exists():
            raw = json.loads(current.manifest.read_text(encoding="utf-8"))
            if raw.get("format") != FORMAT_VERSION:
                # Our own format changed (not a user choice): rebuild rather than make the user do it.
                log.warning("index format %s is outdated; rebuilding", raw.get("format"))
                current, rebuild = None, True
                embeddings.preload_in_background()
            else:
                previous = Manifest.model_validate(raw)
                if previous.model != embeddings.name:
                    raise ModelMismatch(
                        f"the index was built with embedding model {previous.model!r}, not {embeddings.name!r}"
                        " — run `stride ingest --rebuild`"
                    )
        staged = paths.staging()
        if current is not None:
            shutil.copytree(current.root, staged.root)
        try:
            report = _update_version(
                staged, previous, articles, chunks, embeddings, progress, settings.embed_batch_size, fingerprint
            )
            lexicon_changed = _copy_lexicon(corpus_dir, staged, current)
            # A new fingerprint alone (say, a new Stride) publishes too, so the next run can skip at once.
            changed = (rebuild or current is None or report.num_added or report.num_deleted or lexicon_changed
                       or previous is None or previous.source_fingerprint != fingerprint)
            if changed:
                progress.stage("building the keyword index", None)
                search_files.write(staged.root, _search_files(chunks))
                paths.publish(staged, f"{now_iso().replace(':', '')}-{report.index_version}")
        finally:
            shutil.rmtree(staged.root, ignore_errors=True)
        paths.collect_garbage()
    report.rebuilt = rebuild
    report.planted = planted
    return report
