"""The index on a Chroma server (``STRIDE_CHROMA_URL``): what ``store.py`` keeps in a version directory,
kept in the server instead, so any number of replicas on any machines read the same versions.

Collections:
  stride_chunks_g<N>, stride_sentences_g<N>  chunk and sentence records of generation N (cosine). Records
        are content-addressed (the same ids as on disk), so versions share them: an ingest adds only new
        chunks. ``--rebuild`` (or a new embedding model) starts generation N+1.
  stride_meta   small records, with a placeholder vector:
        ``current``            the pointer: which version is published (its upsert is the publish)
        ``version:<id>``       a version: manifest, its chunk ids by article, the lexicon, its generation
        ``article:<id>@<sha>`` a cleaned article, shared by the versions that hold that text
        ``lease:<owner>``      a reader's hold on a version, renewed every few seconds while it lives
        ``lock``               the publisher (one ingest at a time, across machines)

Old versions, and the records only they use, are deleted once no live lease holds them and they have
been superseded for longer than ``GRACE_S``, so a replica that has just read the pointer can still load
the version it names. A lease is renewed by a thread while its reader lives; a reader that dies stops
renewing and its lease lapses after ``LEASE_TTL_S``.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from ingest.errors import IndexMissing, IndexUnavailable, ModelMismatch, StrideError
from ingest.lexicon import Lexicon
from ingest.records import ArticleRecord, Manifest
from ingest.store import FORMAT_VERSION, IndexSnapshot, get_all, lease_published, stored_chunks

log = logging.getLogger(__name__)

META = "stride_meta"
POINTER = "current"
LOCK = "lock"
LEASE_TTL_S = 30.0
LEASE_RENEW_S = 10.0
GRACE_S = 60.0  # a superseded version stays this long even unleased
LOCK_TTL_S = 60.0
BATCH = 1000
_PLACEHOLDER = [1.0]  # stride_meta holds no meaning in its vectors; Chroma requires one per record


def chunk_collection(generation: int) -> str:
    return f"stride_chunks_g{generation}"


def sentence_collection(generation: int) -> str:
    return f"stride_sentences_g{generation}"


@dataclass(frozen=True)
class VersionRecord:
    version_id: str
    generation: int
    manifest: dict[str, Any]
    chunks: dict[str, list[str]]  # article id -> chunk ids
    lexicon: str | None  # the corpus lexicon.json as published
    retired_at: float | None = None

    @property
    def chunk_ids(self) -> list[str]:
        return [cid for ids in self.chunks.values() for cid in ids]


class ChromaServer:
    """One Chroma server, as Stride's index store."""

    def __init__(self, url: str, client: Any, grace_s: float = GRACE_S) -> None:
        self.url = url
        self.client = client
        self.grace_s = grace_s
        self._meta: Any | None = None

    @classmethod
    def connect(cls, url: str) -> ChromaServer:
        """A client for ``url``; IndexUnavailable in one line when it cannot be reached."""
        import chromadb
        from chromadb.config import Settings as ChromaSettings

        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise IndexUnavailable(f"STRIDE_CHROMA_URL={url!r} is not a URL like http://127.0.0.1:8001")
        try:
            client = chromadb.HttpClient(
                host=parts.hostname, port=parts.port or (443 if parts.scheme == "https" else 80),
                ssl=parts.scheme == "https", settings=ChromaSettings(anonymized_telemetry=False),
            )
            client.heartbeat()
        except Exception as err:
            raise IndexUnavailable(
                f"cannot reach the Chroma server at {url} ({type(err).__name__}) — start it with "
                f"`chroma run --path DIR --port {parts.port or 8000}`, or fix STRIDE_CHROMA_URL"
            ) from None
        return cls(url, client)

    def alive(self) -> bool:
        try:
            self.client.heartbeat()
        except Exception:
            return False
        return True

    # --- records ------------------------------------------------------------------------------
    @property
    def meta(self) -> Any:
        if self._meta is None:
            self._meta = self.client.get_or_create_collection(META, embedding_function=None)
        return self._meta

    def _get(self, ids: list[str]) -> dict[str, tuple[str, dict[str, Any]]]:
        got = self.meta.get(ids=ids, include=["documents", "metadatas"])
        return {i: (d or "", m or {}) for i, d, m in zip(got["ids"], got["documents"], got["metadatas"], strict=True)}

    def _put(self, rid: str, document: str, metadata: dict[str, Any]) -> None:
        self.meta.upsert(ids=[rid], documents=[document], metadatas=[metadata], embeddings=[_PLACEHOLDER])

    def current(self) -> tuple[str, int] | None:
        """The published version's id and generation."""
        got = self._get([POINTER]).get(POINTER)
        return (str(got[1]["version"]), int(got[1]["generation"])) if got else None

    def current_id(self) -> str | None:
        cur = self.current()
        return cur[0] if cur else None

    def read_version(self, version_id: str) -> VersionRecord | None:
        got = self._get([f"version:{version_id}"]).get(f"version:{version_id}")
        if got is None:
            return None
        body = json.loads(got[0])
        retired = got[1].get("retired_at")
        return VersionRecord(version_id, int(got[1]["generation"]), body["manifest"], body["chunks"],
                             body.get("lexicon"), float(retired) if retired is not None else None)

    def write_version(self, rec: VersionRecord) -> None:
        body = json.dumps({"manifest": rec.manifest, "chunks": rec.chunks, "lexicon": rec.lexicon}, ensure_ascii=False)
        self._put(f"version:{rec.version_id}", body, {"kind": "version", "generation": rec.generation})

    def publish(self, rec: VersionRecord, previous: str | None) -> None:
        """Write the version, then swap the pointer to it (one record upsert: readers see old or new)."""
        self.write_version(rec)
        self._put(POINTER, "", {"kind": "pointer", "version": rec.version_id, "generation": rec.generation})
        if previous is not None and previous != rec.version_id:
            old = self._get([f"version:{previous}"]).get(f"version:{previous}")
            if old is not None:
                self.meta.update(ids=[f"version:{previous}"], metadatas=[{**old[1], "retired_at": time.time()}])

    def articles(self, keys: list[str]) -> dict[str, str]:
        """``article:<id>@<sha>`` key -> the ArticleRecord JSON."""
        out: dict[str, str] = {}
        for i in range(0, len(keys), BATCH):
            got = self._get([f"article:{k}" for k in keys[i : i + BATCH]])
            out.update({rid.removeprefix("article:"): doc for rid, (doc, _) in got.items()})
        return out

    def put_articles(self, records: dict[str, str]) -> None:
        items = list(records.items())
        for i in range(0, len(items), BATCH):
            part = items[i : i + BATCH]
            self.meta.upsert(ids=[f"article:{k}" for k, _ in part], documents=[d for _, d in part],
                             metadatas=[{"kind": "article"} for _ in part], embeddings=[_PLACEHOLDER for _ in part])

    def collections(self, generation: int, model: str) -> tuple[Any, Any]:
        config = {"hnsw": {"space": "cosine"}}
        meta = {"stride_model": model}
        return (
            self.client.get_or_create_collection(chunk_collection(generation), metadata=meta,
                                                 configuration=config, embedding_function=None),
            self.client.get_or_create_collection(sentence_collection(generation), metadata=meta,
                                                 configuration=config, embedding_function=None),
        )

    # --- one publisher at a time ---------------------------------------------------------------
    @contextmanager
    def publisher_lock(self) -> Iterator[None]:
        """Best effort across machines (Chroma has no compare-and-set): claim the lock record, read it
        back, and keep it fresh while the ingest runs; a lock not renewed for LOCK_TTL_S is stale."""
        owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        held = self._get([LOCK]).get(LOCK)
        if held and held[1].get("owner") != owner and time.time() - float(held[1].get("at", 0)) < LOCK_TTL_S:
            raise StrideError(f"another `stride ingest` ({held[1].get('owner')}) is publishing to {self.url}"
                              " — wait for it to finish")
        self._put(LOCK, "", {"kind": "lock", "owner": owner, "at": time.time()})
        time.sleep(0.2)  # a rival that wrote at the same moment: the last write wins, and both re-read
        if (self._get([LOCK]).get(LOCK) or ("", {}))[1].get("owner") != owner:
            raise StrideError(f"another `stride ingest` is publishing to {self.url} — wait for it to finish")
        stop = threading.Event()

        def renew() -> None:
            while not stop.wait(LOCK_TTL_S / 4):
                try:
                    self._put(LOCK, "", {"kind": "lock", "owner": owner, "at": time.time()})
                except Exception:
                    log.warning("could not renew the publisher lock on %s", self.url)

        thread = threading.Thread(target=renew, daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()
            self.meta.delete(ids=[LOCK])

    # --- leases and clean-up -------------------------------------------------------------------
    def lease(self, version_id: str) -> ServerLease | None:
        """A renewed hold on ``version_id``; None when the version is gone already."""
        lease = ServerLease(self, version_id)
        if self.read_version(version_id) is None:
            lease.close()
            return None
        return lease

    def lease_current(self, attempts: int = 5) -> ServerLease | None:
        return lease_published(self.current_id, self.lease, self.url, attempts)

    def collect_garbage(self) -> list[str]:
        """Delete superseded versions no live lease holds, then the records and collections only they
        used. Call holding the publisher lock. Returns the ids kept because they are in use."""
        now = time.time()
        got = get_all(self.meta, ["metadatas"], where={"kind": {"$in": ["version", "lease"]}})
        leases = {rid: m for rid, m in zip(got["ids"], got["metadatas"], strict=True) if m["kind"] == "lease"}
        expired = [rid for rid, m in leases.items() if now - float(m["seen"]) > LEASE_TTL_S]
        if expired:
            self.meta.delete(ids=expired)
        leased = {m["version"] for rid, m in leases.items() if rid not in expired}
        current = self.current_id()
        keep: list[VersionRecord] = []
        in_use: list[str] = []
        for rid, m in zip(got["ids"], got["metadatas"], strict=True):
            if m["kind"] != "version":
                continue
            vid = rid.removeprefix("version:")
            retired = m.get("retired_at")
            # Never retired and not current: written by a publish that died before its pointer swap.
            recent = retired is not None and now - float(retired) < self.grace_s
            if vid == current or vid in leased or recent:
                rec = self.read_version(vid)
                if rec is not None:
                    keep.append(rec)
                if vid != current:
                    in_use.append(vid)
            else:
                self.meta.delete(ids=[rid])
        self._drop_unreferenced(keep)
        return in_use

    def _drop_unreferenced(self, keep: list[VersionRecord]) -> None:
        generations = {r.generation for r in keep}
        for coll in self.client.list_collections():
            name = coll.name if hasattr(coll, "name") else str(coll)
            for prefix in ("stride_chunks_g", "stride_sentences_g"):
                gen = name[len(prefix):] if name.startswith(prefix) else ""
                if gen.isdigit() and int(gen) not in generations:
                    self.client.delete_collection(name)
        for gen in generations:
            live = {cid for r in keep if r.generation == gen for cid in r.chunk_ids}
            chunks = self.client.get_collection(chunk_collection(gen))
            stale = [cid for cid in get_all(chunks, [])["ids"] if cid not in live]
            for i in range(0, len(stale), BATCH):
                chunks.delete(ids=stale[i : i + BATCH])
            sentences = self.client.get_collection(sentence_collection(gen))
            stale = [sid for sid in get_all(sentences, [])["ids"] if sid.rsplit(":", 1)[0] not in live]
            for i in range(0, len(stale), BATCH):
                sentences.delete(ids=stale[i : i + BATCH])
        live_articles = {f"article:{aid}@{a['sha']}" for r in keep for aid, a in r.manifest["articles"].items()}
        got = get_all(self.meta, [], where={"kind": "article"})
        stale = [rid for rid in got["ids"] if rid not in live_articles]
        for i in range(0, len(stale), BATCH):
            self.meta.delete(ids=stale[i : i + BATCH])


class ServerLease:
    """A reader's hold on one version on the server: a lease record renewed by a thread until closed."""

    def __init__(self, server: ChromaServer, version_id: str) -> None:
        self.server = server
        self.version_id = version_id
        self._id = f"lease:{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._stop = threading.Event()
        self._renew()
        self._thread = threading.Thread(target=self._run, name="stride-lease", daemon=True)
        self._thread.start()

    def _renew(self) -> None:
        self.server._put(self._id, "", {"kind": "lease", "version": self.version_id, "seen": time.time()})

    def _run(self) -> None:
        while not self._stop.wait(LEASE_RENEW_S):
            try:
                self._renew()
            except Exception:  # the server is away; the lease lapses only if it stays away past the TTL
                log.warning("could not renew the lease on index version %s", self.version_id)

    @property
    def held(self) -> bool:
        return not self._stop.is_set()

    def close(self) -> None:
        if self._stop.is_set():
            return
        self._stop.set()
        try:
            self.server.meta.delete(ids=[self._id])
        except Exception:
            log.warning("could not release the lease on index version %s; it lapses by itself", self.version_id)


def read_snapshot(server: ChromaServer, version_id: str, expected_model: str) -> tuple[IndexSnapshot, Lexicon, int]:
    """The version read whole from the server (its chunk records fetched by id, in batches), its lexicon
    and its generation; IndexMissing / ModelMismatch say how to fix it."""
    rec = server.read_version(version_id)
    if rec is None:
        raise IndexMissing(f"index version {version_id} is gone from {server.url} — try again")
    manifest = Manifest.model_validate(rec.manifest)
    if manifest.format != FORMAT_VERSION:
        raise IndexMissing(f"the index on {server.url} has an old format — run `stride ingest --rebuild`")
    if manifest.model != expected_model:
        raise ModelMismatch(
            f"the index on {server.url} was built with embedding model {manifest.model!r} but {expected_model!r} "
            "is configured — run `stride ingest --rebuild`, or set STRIDE_EMBEDDING_MODEL / "
            "STRIDE_EMBEDDING_BACKEND back"
        )
    chunks_coll = server.client.get_collection(chunk_collection(rec.generation))
    ids = rec.chunk_ids
    # The chunk documents are not fetched: a chunk's text is in its metadata, and its indexed text is made from it.
    got: dict[str, list[Any]] = {"ids": [], "metadatas": [], "embeddings": []}
    for i in range(0, len(ids), BATCH):
        part = chunks_coll.get(ids=ids[i : i + BATCH], include=["metadatas", "embeddings"])
        for key in got:
            got[key].extend(part[key])
    if len(got["ids"]) != len(ids):
        raise IndexMissing(
            f"index version {version_id} on {server.url} is missing chunks — run `stride ingest --rebuild`"
        )
    keys = [f"{aid}@{a.sha}" for aid, a in manifest.articles.items()]
    texts = server.articles(keys)
    articles = {
        aid: ArticleRecord.model_validate_json(texts[f"{aid}@{entry.sha}"]).model_copy(
            update={"ingested_at": entry.ingested_at})
        for aid, entry in manifest.articles.items()
    }
    snapshot = IndexSnapshot(manifest=manifest, chunks=stored_chunks(got), articles=articles, version_id=version_id)
    return snapshot, Lexicon.parse(rec.lexicon, f"{server.url} lexicon"), rec.generation
