"""``stride ingest`` into a Chroma server (``STRIDE_CHROMA_URL``): the same corpus processing, published
as a version record plus a pointer swap (see ``chroma_server``).

Chunk records are content-addressed, so only chunks the server does not hold yet are embedded; the
version lists the chunk ids it is made of. Nothing a published version uses is changed or deleted.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ingest.chroma_server import BATCH, ChromaServer, VersionRecord
from ingest.embedding import SentenceEmbeddings
from ingest.errors import ModelMismatch
from ingest.lexicon import LEXICON_NAME, Lexicon
from ingest.models import Article, Chunk
from ingest.records import ArticleRecord, Manifest, ManifestArticle
from ingest.store import COLLECTION, FORMAT_VERSION, chunk_id, chunk_metadata, now_iso, sentence_id

if TYPE_CHECKING:
    from ingest.pipeline import IngestReport, Progress

log = logging.getLogger(__name__)


def ingest_to_server(
    server: ChromaServer,
    corpus_dir: Path,
    articles: list[Article],
    chunks: list[Chunk],
    embeddings: SentenceEmbeddings,
    progress: Progress,
    rebuild: bool,
    fingerprint: str | None = None,
) -> IngestReport:
    from ingest.pipeline import ArticleCounts, IngestReport, sentence_texts

    Lexicon.load(corpus_dir)  # validate before publishing
    lexicon_path = corpus_dir / LEXICON_NAME
    lexicon = lexicon_path.read_text(encoding="utf-8") if lexicon_path.exists() else None
    with server.publisher_lock():
        server.collect_garbage()
        current = server.current()
        previous = server.read_version(current[0]) if current else None
        old_manifest = Manifest.model_validate(previous.manifest) if previous else None
        if old_manifest is not None and old_manifest.format != FORMAT_VERSION:
            rebuild = True  # our own format changed, not a user choice
        if old_manifest is not None and not rebuild and old_manifest.model != embeddings.name:
            raise ModelMismatch(f"the index on {server.url} was built with embedding model {old_manifest.model!r}, "
                                f"not {embeddings.name!r} — run `stride ingest --rebuild`")
        generation = (current[1] + 1 if current else 1) if rebuild or previous is None else previous.generation
        chunk_coll, sentence_coll = server.collections(generation, embeddings.name)

        ids = [chunk_id(c.embedding_text(), chunk_metadata(c)) for c in chunks]
        held: set[str] = set()
        for i in range(0, len(ids), BATCH):
            held.update(chunk_coll.get(ids=ids[i : i + BATCH], include=[])["ids"])
        new = [(cid, c) for cid, c in zip(ids, chunks, strict=True) if cid not in held]
        if new:
            _add(server, chunk_coll, sentence_coll, new, embeddings, progress, sentence_texts)

        by_article: dict[str, list[str]] = {}
        for cid, c in sorted(zip(ids, chunks, strict=True), key=lambda p: (p[1].article_id, p[1].position)):
            by_article.setdefault(c.article_id, []).append(cid)
        before = {aid: set(v) for aid, v in (previous.chunks if previous else {}).items()}
        if rebuild:
            before = {}
        known = sorted(set(by_article) | set(before))
        per_article = {}
        for aid in known:
            now_ids, was = set(by_article.get(aid, ())), before.get(aid, set())
            per_article[aid] = ArticleCounts(added=len(now_ids - was), skipped=len(now_ids & was),
                                             deleted=len(was - now_ids), chunks=len(now_ids))
        version_hash = hashlib.sha256("\n".join(sorted(ids)).encode()).hexdigest()[:16]
        stamp = now_iso()
        old_articles = old_manifest.articles if old_manifest else {}

        def ingested_at(a: Article) -> str:
            was = old_articles.get(a.article_id)
            return was.ingested_at if was is not None and was.sha == a.sha and was.ingested_at else stamp

        manifest = Manifest(
            format=FORMAT_VERSION, model=embeddings.name,
            dim=embeddings.dimension if embeddings.loaded else (old_manifest.dim if old_manifest else None),
            collection=COLLECTION, index_version=version_hash, built_at=stamp, num_chunks=len(ids),
            source_fingerprint=fingerprint,
            articles={a.article_id: ManifestArticle(
                title=a.title, file=a.file, publisher=a.publisher, author=a.author, sha=a.sha,
                num_chunks=per_article[a.article_id].chunks, ingested_at=ingested_at(a)) for a in articles},
        )
        server.put_articles({f"{a.article_id}@{a.sha}": json.dumps(
            ArticleRecord.of(a).model_dump(exclude={"ingested_at"}), ensure_ascii=False) for a in articles})
        num_added = sum(c.added for c in per_article.values())
        num_deleted = sum(c.deleted for c in per_article.values())
        changed = (rebuild or previous is None or num_added or num_deleted
                   or lexicon != previous.lexicon or _listing(manifest) != _listing(old_manifest)
                   or old_manifest is None or old_manifest.source_fingerprint != fingerprint)
        if changed:
            version_id = f"{stamp.replace(':', '')}-{version_hash}"
            n = 1
            while server.read_version(version_id if n == 1 else f"{version_id}-{n}") is not None:
                n += 1
            version_id = version_id if n == 1 else f"{version_id}-{n}"
            progress.stage(f"publishing {version_id} to {server.url}", None)
            server.publish(VersionRecord(version_id, generation, manifest.model_dump(), by_article, lexicon),
                           current[0] if current else None)
        server.collect_garbage()
    return IngestReport(num_added=num_added, num_updated=0, num_skipped=sum(c.skipped for c in per_article.values()),
                        num_deleted=num_deleted, articles=per_article, index_version=version_hash,
                        model=embeddings.name)


def _listing(manifest: Manifest | None) -> Any:
    # What a reader sees of the articles besides their chunks (titles and the like from manifest.json).
    if manifest is None:
        return None
    return {aid: (a.title, a.file, a.publisher, a.author, a.sha) for aid, a in manifest.articles.items()}


def _add(server: ChromaServer, chunk_coll: Any, sentence_coll: Any, new: list[tuple[str, Chunk]],
         embeddings: SentenceEmbeddings, progress: Progress, sentence_texts: Any) -> None:
    sentences = [(sentence_id(cid, i), text, c) for cid, c in new for i, text in enumerate(sentence_texts(c))]
    texts = [c.embedding_text() for _, c in new] + [t for _, t, _ in sentences]
    progress.stage(f"loading embedding model {embeddings.name}", None)
    embeddings.model  # noqa: B018 -- load now, so the bar below counts only embedding
    progress.stage(f"embedding {len(new)} chunks and their sentences", len(texts))
    embeddings.on_batch = progress.advance
    try:
        vectors = embeddings.embed_documents(texts)
    finally:
        embeddings.on_batch = None
    chunk_vecs, sentence_vecs = vectors[: len(new)], vectors[len(new) :]
    for i in range(0, len(new), BATCH):
        part = new[i : i + BATCH]
        chunk_coll.upsert(ids=[cid for cid, _ in part], documents=[c.embedding_text() for _, c in part],
                          metadatas=[chunk_metadata(c) for _, c in part], embeddings=chunk_vecs[i : i + BATCH])
    for i in range(0, len(sentences), BATCH):
        rows = sentences[i : i + BATCH]
        sentence_coll.upsert(ids=[sid for sid, _, _ in rows], documents=[t for _, t, _ in rows],
                             metadatas=[{"chunk_id": sid.rsplit(":", 1)[0], "i": int(sid.rsplit(":", 1)[1]),
                                         "article_id": c.article_id} for sid, _, c in rows],
                             embeddings=sentence_vecs[i : i + BATCH])
