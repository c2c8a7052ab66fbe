"""The on-disk index format. Ingest writes it; the service reads it through ``open_index``.

Layout under ``<data_dir>/index/``:
  current -> versions/<id>   symlink to the committed version, replaced atomically
  versions/<id>/
    chroma/          Chroma PersistentClient, collection ``stride_chunks`` (cosine): chunk ids, vectors and
                     article ids, for the ANN search; its metadata records the embedding model that built it
    records.sqlite   LangChain SQLRecordManager: what is indexed, for incremental re-runs
    chunks/          the chunks, their vectors and sentence vectors, one shard per article (ingest/shards.py):
                     what the service loads, and what the next ingest keeps for unchanged articles
    articles/<id>.json  each cleaned article (text, sections, what cleaning removed, planted text found)
    index.json       the version's manifest: model, articles, content hashes, chunk count
    search/          the BM25 index and term counts, built at ingest (ingest/search_files.py)
    .lease           readers hold a shared flock on it while they use the version (see VersionLease)
  staging-<pid>/     an ingest in progress (``stage_from`` the current one, then updated); never read
  trash-<id>/        a version being deleted (renamed first, so no reader can open it half-deleted)

An ingest never writes to the version readers use: it works on a staged copy and swaps the symlink at
the end. Only Chroma's files and the record manager are changed in place, so only they are copied; every
other file is written whole and renamed into place, so the staged copy shares it with the published
version by a hard link until it is replaced. A crash or Ctrl-C at any point leaves ``current`` as it
was, and the next run starts afresh.
Old versions are deleted only once no process holds a lease on them, so a running server never has
its files pulled away; a lease is an flock, so a reader that dies releases it with its process.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from ingest.errors import IndexMissing, ModelMismatch, StrideError
from ingest.models import Chunk
from ingest.records import ArticleRecord, Manifest

V = TypeVar("V")
L = TypeVar("L")
FORMAT_VERSION = 5  # 2: sentence vectors; chunk header without the article title; 3: planted-text records;
# 4: the keyword index and term counts written at ingest (ingest/search_files.py); 5: chunks and (sentence)
# vectors in per-article shards (ingest/shards.py), Chroma the ANN only; BM25 postings kept for updates
COLLECTION = "stride_chunks"
SENTENCE_COLLECTION = "stride_sentences"  # on a Chroma server: one vector per sentence, id "<chunk_id>:<i>"
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
    def shards(self) -> Path:
        return self.root / "chunks"

    @property
    def manifest(self) -> Path:
        return self.root / "index.json"

    @property
    def lexicon(self) -> Path:
        return self.root / "lexicon.json"

    @property
    def lease(self) -> Path:
        return self.root / ".lease"

    @property
    def version_id(self) -> str:
        return self.root.name

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

    def current_id(self) -> str | None:
        """The published version's id, from the pointer alone: cheap enough to poll every second."""
        try:
            return Path(os.readlink(self.current_link)).name
        except (FileNotFoundError, OSError):
            return None

    def staging(self) -> VersionPaths:
        return VersionPaths(self.root / f"staging-{os.getpid()}")

    def publish(self, staged: VersionPaths, version_id: str) -> VersionPaths:
        """Make ``staged`` the current version: rename it into versions/, swap the symlink atomically."""
        self.versions.mkdir(parents=True, exist_ok=True)
        final = VersionPaths(self.versions / version_id)
        n = 1
        while final.root.exists():  # the same content twice in one second: never replace a version in use
            n += 1
            final = VersionPaths(self.versions / f"{version_id}-{n}")
        staged.lease.unlink(missing_ok=True)  # copied from the old version; readers make a fresh one
        staged.root.rename(final.root)
        tmp_link = self.root / f".current.{os.getpid()}"
        tmp_link.unlink(missing_ok=True)
        tmp_link.symlink_to(final.root.relative_to(self.root))
        os.replace(tmp_link, self.current_link)
        return final

    def lease_current(self, attempts: int = 5) -> VersionLease | None:
        """A lease on the current version, or None when nothing is published. Retries when an ingest
        publishes and deletes the version between reading the pointer and taking the lease."""
        return lease_published(self.current, VersionLease.take, str(self.root), attempts)

    def collect_garbage(self) -> list[str]:
        """Move versions other than the current one that no reader holds to ``trash-*``, and remove
        staging left by interrupted runs (call under ``ingest_lock``; then ``empty_trash``, which needs no
        lock, so the lock is held for renames, not for deleting a version's files). Returns the ids kept
        because they are in use."""
        cur = self.current()
        for stale in self.root.glob("staging-*"):
            shutil.rmtree(stale, ignore_errors=True)
        in_use: list[str] = []
        if self.versions.exists():
            for v in sorted(self.versions.iterdir()):
                if (cur is None or v.resolve() != cur.root) and not self._remove_unused(VersionPaths(v)):
                    in_use.append(v.name)
        return in_use

    def _remove_unused(self, version: VersionPaths) -> bool:
        try:
            fd = os.open(version.lease, os.O_RDWR | os.O_CREAT, 0o644)
        except FileNotFoundError:
            return True  # already gone
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        try:
            # Renamed while the lock is held: a reader waiting for the lock then finds no manifest at
            # the version's path and moves on to the current one.
            version.root.rename(self.root / f"trash-{version.version_id}")
        finally:
            os.close(fd)
        return True

    def empty_trash(self) -> None:
        """Delete the versions ``collect_garbage`` moved aside (nothing reads them any more)."""
        for trash in self.root.glob("trash-*"):
            shutil.rmtree(trash, ignore_errors=True)


def lease_published(current: Callable[[], V | None], take: Callable[[V], L | None], where: str,
                    attempts: int = 5) -> L | None:
    """A lease on what ``current`` names (None when nothing is published), read again when the version
    was deleted between reading the pointer and taking the lease (an ingest published meanwhile)."""
    for _ in range(attempts):
        cur = current()
        if cur is None:
            return None
        lease = take(cur)
        if lease is not None:
            return lease
    raise IndexMissing(f"the index in {where} changed {attempts} times while opening it — try again")


class VersionLease:
    """A reader's hold on one version: a shared flock on its ``.lease`` file. While any reader holds
    one, ``collect_garbage`` keeps the version; ``close`` (or the process ending) lets it go."""

    def __init__(self, version: VersionPaths, fd: int) -> None:
        self.version = version
        self._fd: int | None = fd

    @classmethod
    def take(cls, version: VersionPaths) -> VersionLease | None:
        """The lease, or None when the version was deleted before it could be taken."""
        try:
            fd = os.open(version.lease, os.O_RDWR | os.O_CREAT, 0o644)
        except FileNotFoundError:
            return None
        fcntl.flock(fd, fcntl.LOCK_SH)  # waits only while a collector is renaming the version away
        if not version.manifest.exists():
            os.close(fd)
            return None
        return cls(version, fd)

    @property
    def held(self) -> bool:
        return self._fd is not None

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def write_json_atomic(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with tmp.open("w", encoding="utf-8") as fh:
        json.dump(data, fh, ensure_ascii=False, indent=1)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


IN_PLACE = ("chroma", "records.sqlite")  # what Chroma and the record manager change in place: copied
REBUILT = (".lease",)  # each reader's own: not carried over


def stage_from(current: VersionPaths, staged: VersionPaths) -> None:
    """Start ``staged`` as a copy of ``current``: Chroma and the record manager copied, every other file
    hard-linked (it is only ever replaced by a rename, so the published version never sees a change)."""
    staged.root.mkdir(parents=True)
    for entry in current.root.iterdir():
        target = staged.root / entry.name
        if entry.name in REBUILT:
            continue
        if entry.name in IN_PLACE:
            if entry.is_dir():
                shutil.copytree(entry, target)
            else:
                shutil.copy2(entry, target)
        elif entry.is_dir():
            shutil.copytree(entry, target, copy_function=os.link)
        else:
            os.link(entry, target)


@contextlib.contextmanager
def ingest_lock(paths: IndexPaths, wait_s: float = 0.0) -> Iterator[None]:
    """One ingest at a time per index; a second one fails instead of racing. It waits up to ``wait_s``
    first: a server's clean-up (``LocalIndex.collect_garbage_if_idle``) holds the lock for a moment, and
    an ingest that starts then must not be told another one is running."""
    paths.root.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + wait_s
    with paths.lock.open("w") as fh:
        while True:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError as err:
                if time.monotonic() >= deadline:
                    raise StrideError(
                        f"another `stride ingest` is running on {paths.root} — wait for it to finish") from err
                time.sleep(0.05)
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
    """A chunk as read back from the index, with its stable id and embedding. Sentence vectors are not
    loaded with it: they stay in the version's shards (on a Chroma server, its sentence collection), read
    for the chunks a question retrieves."""

    chunk_id: str
    chunk: Chunk
    embedding: np.ndarray  # float32, a row of the snapshot's vector matrix

    @property
    def indexed_text(self) -> str:
        """Section trail + prefix + text: what was embedded and keyword-indexed (made when asked, not kept
        for every chunk in the server's memory)."""
        return self.chunk.embedding_text()

    @classmethod
    def from_record(cls, cid: str, meta: dict[str, Any], embedding: np.ndarray) -> StoredChunk:
        return cls(cid, chunk_from_metadata(meta), embedding)


def chunk_from_metadata(meta: dict[str, Any]) -> Chunk:
    """The chunk ``chunk_metadata`` describes."""
    return Chunk(
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


PAGE = 5000  # records per Chroma ``get``: an unbounded one fails inside Chroma ("too many SQL variables")


def get_all(collection: Any, include: list[str], where: dict[str, Any] | None = None) -> dict[str, list[Any]]:
    """Every record of ``collection`` (matching ``where``), fetched a page at a time."""
    out: dict[str, list[Any]] = {key: [] for key in ["ids", *include]}
    offset = 0
    while True:
        page = collection.get(include=include, where=where, limit=PAGE, offset=offset)
        for key in out:
            out[key].extend(page[key])
        if len(page["ids"]) < PAGE:
            return out
        offset += PAGE


def stored_chunks(got: dict[str, Any]) -> list[StoredChunk]:
    """Chunk records as Chroma's ``get`` returns them, in reading order (article, then position)."""
    # One float32 matrix, never a Python float per component (38M of them at 100k chunks).
    vectors = np.asarray(got["embeddings"], dtype=np.float32).reshape(len(got["ids"]), -1)
    order = sorted(range(len(got["ids"])),
                   key=lambda i: (got["metadatas"][i]["article_id"], int(got["metadatas"][i]["position"])))
    vectors = vectors[order] if order else vectors
    return [StoredChunk.from_record(got["ids"][i], got["metadatas"][i], vectors[row])
            for row, i in enumerate(order)]


def open_chroma(path: Path) -> Any:
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    return chromadb.PersistentClient(path=str(path), settings=ChromaSettings(anonymized_telemetry=False))


@dataclass
class IndexSnapshot:
    """One committed version: its chunks and their vectors in memory, sentence vectors read as needed."""

    manifest: Manifest
    chunks: list[StoredChunk]  # by article, then position
    articles: dict[str, ArticleRecord]
    version_id: str  # the published version's id (a directory name, or a record on a Chroma server)
    root: Path | None = None  # the version directory; None on a Chroma server
    sentences: Any = None  # shards.ShardSentences of a version directory; None on a Chroma server
    vectors: np.ndarray | None = None  # the chunks' vectors as one matrix (their embeddings are its rows), if read so

    @property
    def model(self) -> str:
        return self.manifest.model

    @property
    def version(self) -> str:
        return self.manifest.index_version


def read_manifest(data_dir: Path) -> Manifest:
    cur = IndexPaths.for_data_dir(data_dir).current()
    if cur is None:
        raise IndexMissing(f"no index in {data_dir / 'index'} — run `stride ingest`")
    return read_version_manifest(cur)


def read_version_manifest(version: VersionPaths) -> Manifest:
    if not version.manifest.exists():
        raise IndexMissing(f"no index in {version.root.parent.parent} — run `stride ingest`")
    raw = json.loads(version.manifest.read_text(encoding="utf-8"))
    if raw.get("format") != FORMAT_VERSION:
        raise IndexMissing(f"the index in {version.root} has an old format — run `stride ingest --rebuild`")
    return Manifest.model_validate(raw)


def open_index(data_dir: Path, expected_model: str) -> IndexSnapshot:
    """Read the current version whole (under a lease while reading); IndexMissing or ModelMismatch say
    how to fix it. A server that keeps querying the version's Chroma holds its own lease instead."""
    lease = IndexPaths.for_data_dir(data_dir).lease_current()
    if lease is None:
        raise IndexMissing(f"no index in {data_dir / 'index'} — run `stride ingest`")
    try:
        return read_version(lease.version, expected_model)
    finally:
        lease.close()


def read_version(cur: VersionPaths, expected_model: str) -> IndexSnapshot:
    """One version, read whole, checked against the configured embedding model."""
    manifest = read_version_manifest(cur)
    if manifest.model != expected_model:
        raise ModelMismatch(
            f"the index was built with embedding model {manifest.model!r} but {expected_model!r} is configured"
            " — run `stride ingest --rebuild`, or set STRIDE_EMBEDDING_MODEL / STRIDE_EMBEDDING_BACKEND back"
        )
    from ingest.shards import MatrixFile, ShardSentences, read_shard_for_serving

    read: list[tuple[str, Chunk]] = []
    sentences = ShardSentences(manifest.dim or 0)
    files: list[MatrixFile] = []
    try:
        for aid in sorted(manifest.articles):
            ids, metadatas, vectors, sentence_file = read_shard_for_serving(cur.root, aid)
            article_chunks = [chunk_from_metadata(meta) for meta in metadatas]
            if vectors.rows != len(ids) or (files and ids and vectors.dim != files[0].dim):
                raise ValueError(f"{vectors.path.name} does not match its chunks")
            if ids:
                files.append(vectors)
            read.extend(zip(ids, article_chunks, strict=True))
            sentences.add(ids, article_chunks, sentence_file)
        # One matrix, filled shard by shard, the chunks' embeddings its rows (views): the search uses it as it
        # is, and no per-shard array is made on the way (thousands of small ones would stay in the heap).
        matrix = np.empty((len(read), files[0].dim if files else manifest.dim or 0), dtype=np.float32)
        row = 0
        for f in files:
            f.read_into(matrix[row : row + f.rows])
            row += f.rows
    except (OSError, ValueError, KeyError) as err:
        raise IndexMissing(f"the chunks in {cur.shards} are unreadable — run `stride ingest --rebuild`") from err
    chunks = [StoredChunk(cid, c, matrix[row]) for row, (cid, c) in enumerate(read)]
    articles = {
        aid: ArticleRecord.model_validate_json(cur.article(aid).read_text(encoding="utf-8")).model_copy(
            update={"ingested_at": entry.ingested_at}
        )
        for aid, entry in manifest.articles.items()
    }
    return IndexSnapshot(manifest=manifest, chunks=chunks, articles=articles, version_id=cur.version_id,
                         root=cur.root, sentences=sentences, vectors=matrix)


def now_iso() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
