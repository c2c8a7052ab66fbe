"""The on-disk index format. Ingest writes it; the service reads it through ``open_index``.

Layout under ``<data_dir>/index/``:
  current -> versions/<id>   symlink to the committed version, replaced atomically
  versions/<id>/
    chroma/          Chroma PersistentClient, collection ``stride_chunks`` (cosine): the source of truth
                     for chunks; its metadata records the embedding model that built it
    records.sqlite   LangChain SQLRecordManager: what is indexed, for incremental re-runs
    articles/<id>.json  each cleaned article (text, sections, what cleaning removed, planted text found)
    index.json       the version's manifest: model, articles, content hashes, chunk count
  staging-<pid>/     an ingest in progress (a copy of current, then updated); never read

An ingest never writes to the version readers use: it works on a copy and swaps the symlink at the
end. A crash or Ctrl-C at any point leaves ``current`` as it was, and the next run starts afresh.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ingest.errors import IndexMissing, ModelMismatch, StrideError
from ingest.models import Chunk
from ingest.records import ArticleRecord, Manifest

FORMAT_VERSION = 3  # 2: sentence vectors; chunk header without the article title; 3: planted-text records
COLLECTION = "stride_chunks"
SENTENCE_COLLECTION = "stride_sentences"  # one vector per sentence of each chunk, id "<chunk_id>:<i>"
RECORD_NAMESPACE = f"chroma/{COLLECTION}"


@dataclass(frozen=True)
class VersionPaths:
    root: Path

    @property
    def chroma(self) -> Path:
        return self.root / "chroma"

    @property
    def records(self) -> Path:
        return self.root / "records.sqlite"

    @property
    def articles(self) -> Path:
        return self.root / "articles"

    @property
    def manifest(self) -> Path:
        return self.root / "index.json"

    @property
    def lexicon(self) -> Path:
        return self.root / "lexicon.json"

    def article(self, article_id: str) -> Path:
        return self.articles / f"{article_id}.json"


@dataclass(frozen=True)
class IndexPaths:
    root: Path  # <data_dir>/index

    @classmethod
    def for_data_dir(cls, data_dir: Path) -> IndexPaths:
        return cls(data_dir / "index")

    @property
    def current_link(self) -> Path:
        return self.root / "current"

    @property
    def versions(self) -> Path:
        return self.root / "versions"

    @property
    def lock(self) -> Path:
        return self.root / ".lock"

    def current(self) -> VersionPaths | None:
        link = self.current_link
        return VersionPaths(link.resolve()) if link.exists() else None

    def staging(self) -> VersionPaths:
        return VersionPaths(self.root / f"staging-{os.getpid()}")

    def publish(self, staged: VersionPaths, version_id: str) -> VersionPaths:
        """Make ``staged`` the current version: rename it into versions/, swap the symlink atomically."""
        self.versions.mkdir(parents=True, exist_ok=True)
        final = VersionPaths(self.versions / version_id)
        if final.root.exists():
            shutil.rmtree(final.root)
        staged.root.rename(final.root)
        tmp_link = self.root / f".current.{os.getpid()}"
        tmp_link.unlink(missing_ok=True)
        tmp_link.symlink_to(final.root.relative_to(self.root))
        os.replace(tmp_link, self.current_link)
        return final

    def collect_garbage(self) -> None:
        """Remove versions other than the current one, and staging left by interrupted runs."""
        cur = self.current()
        for stale in self.root.glob("staging-*"):
            shutil.rmtree(stale, ignore_errors=True)
        if self.versions.exists():
            for v in self.versions.iterdir():
                if cur is None or v.resolve() != cur.root:
                    shutil.rmtree(v, ignore_errors=True)


def write_json_atomic(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with tmp.open("w", encoding="utf-8") as fh:
        json.dump(data, fh, ensure_ascii=False, indent=1)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


@contextlib.contextmanager
def ingest_lock(paths: IndexPaths) -> Iterator[None]:
    """One ingest at a time per index; a second one fails at once instead of racing."""
    paths.root.mkdir(parents=True, exist_ok=True)
    with paths.lock.open("w") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as err:
            raise StrideError(f"another `stride ingest` is running on {paths.root} — wait for it to finish") from err
        yield


# --- chunk <-> Chroma record ------------------------------------------------------------

def chunk_metadata(chunk: Chunk) -> dict[str, Any]:
    return {
        "article_id": chunk.article_id,
        "article_sha": chunk.article_sha,
        "title": chunk.title,
        "section": chunk.section_label,
        "section_path": json.dumps(list(chunk.section), ensure_ascii=False),
        "position": chunk.position,
        "start": chunk.start,
        "end": chunk.end,
        "text": chunk.text,
        "kind": chunk.kind,
        "prefix": chunk.prefix,
        "sentences": json.dumps(chunk.sentences),
        "is_reference": chunk.is_reference,
    }


def chunk_id(page_content: str, metadata: dict[str, Any]) -> str:
    """Stable id of a chunk record: the hash of exactly what is stored, so unchanged chunks keep their
    id across runs and any change (text, offsets, section) makes a new record."""
    payload = json.dumps({"content": page_content, "metadata": metadata}, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(payload.encode()).hexdigest()[:32]


def sentence_id(chunk_id_: str, i: int) -> str:
    return f"{chunk_id_}:{i}"


@dataclass(frozen=True)
class StoredChunk:
    """A chunk as read back from the index, with its stable id and embedding."""

    chunk_id: str
    chunk: Chunk
    embedding: list[float]
    indexed_text: str  # title + section + prefix + text: what was embedded
    sentence_embeddings: tuple[list[float], ...] = ()  # aligned with chunk.sentences

    @classmethod
    def from_record(cls, cid: str, document: str, meta: dict[str, Any], embedding: Any) -> StoredChunk:
        chunk = Chunk(
            article_id=meta["article_id"],
            article_sha=meta["article_sha"],
            title=meta["title"],
            section=tuple(json.loads(meta["section_path"])),
            position=int(meta["position"]),
            start=int(meta["start"]),
            end=int(meta["end"]),
            text=meta["text"],
            kind=meta["kind"],
            prefix=meta.get("prefix") or "",
            sentences=tuple((int(s), int(e)) for s, e in json.loads(meta["sentences"])),
        )
        return cls(cid, chunk, [float(x) for x in embedding], document)


def open_chroma(path: Path) -> Any:
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    return chromadb.PersistentClient(path=str(path), settings=ChromaSettings(anonymized_telemetry=False))


@dataclass
class IndexSnapshot:
    """One committed version, loaded whole (the corpus is small; the service keeps it in memory)."""

    manifest: Manifest
    chunks: list[StoredChunk]
    articles: dict[str, ArticleRecord]
    root: Path  # the version directory (for Chroma queries while serving)

    @property
    def model(self) -> str:
        return self.manifest.model

    @property
    def version(self) -> str:
        return self.manifest.index_version


def read_manifest(data_dir: Path) -> Manifest:
    cur = IndexPaths.for_data_dir(data_dir).current()
    if cur is None or not cur.manifest.exists():
        raise IndexMissing(f"no index in {data_dir / 'index'} — run `stride ingest`")
    raw = json.loads(cur.manifest.read_text(encoding="utf-8"))
    if raw.get("format") != FORMAT_VERSION:
        raise IndexMissing(f"the index in {cur.root} has an old format — run `stride ingest --rebuild`")
    return Manifest.model_validate(raw)


def open_index(data_dir: Path, expected_model: str) -> IndexSnapshot:
    """Read the current version; IndexMissing or ModelMismatch say how to fix it."""
    manifest = read_manifest(data_dir)
    if manifest.model != expected_model:
        raise ModelMismatch(
            f"the index was built with embedding model {manifest.model!r} but {expected_model!r} is configured"
            " — run `stride ingest --rebuild`, or set STRIDE_EMBEDDING_MODEL / STRIDE_EMBEDDING_BACKEND back"
        )
    cur = IndexPaths.for_data_dir(data_dir).current()
    assert cur is not None
    client = open_chroma(cur.chroma)
    try:
        got = client.get_collection(COLLECTION).get(include=["documents", "metadatas", "embeddings"])
        sent = client.get_collection(SENTENCE_COLLECTION).get(include=["embeddings"])
    except Exception as err:  # chromadb raises NotFoundError or ValueError depending on version
        raise IndexMissing(
            f"the Chroma collection in {cur.chroma} is unreadable — run `stride ingest --rebuild`"
        ) from err
    finally:
        client.close()
    sentence_vectors = dict(zip(sent["ids"], sent["embeddings"], strict=True))
    chunks = []
    for cid, doc, meta, emb in zip(got["ids"], got["documents"], got["metadatas"], got["embeddings"], strict=True):
        sc = StoredChunk.from_record(cid, doc, meta, emb)
        if sc.chunk.is_reference:
            vectors: tuple[list[float], ...] = ()
        else:
            try:
                vectors = tuple(
                    [float(x) for x in sentence_vectors[sentence_id(cid, i)]] for i in range(len(sc.chunk.sentences))
                )
            except KeyError as err:
                raise IndexMissing(
                    f"sentence vectors are missing in {cur.chroma} — run `stride ingest --rebuild`"
                ) from err
        chunks.append(StoredChunk(sc.chunk_id, sc.chunk, sc.embedding, sc.indexed_text, vectors))
    chunks.sort(key=lambda sc: (sc.chunk.article_id, sc.chunk.position))
    articles = {
        aid: ArticleRecord.model_validate_json(cur.article(aid).read_text(encoding="utf-8")).model_copy(
            update={"ingested_at": entry.ingested_at}
        )
        for aid, entry in manifest.articles.items()
    }
    return IndexSnapshot(manifest=manifest, chunks=chunks, articles=articles, root=cur.root)


def now_iso() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
