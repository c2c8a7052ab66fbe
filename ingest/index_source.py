"""Where the published index version is read from: the data dir's ``current`` link, or the pointer record
on a Chroma server. A running server polls it to follow new versions (service/api/reload.py)."""

from __future__ import annotations

from typing import Any, Protocol

from ingest.errors import IndexMissing, IndexUnavailable, StrideError
from ingest.settings import Settings
from ingest.store import IndexPaths, ingest_lock, read_manifest


class IndexSource(Protocol):
    def current_id(self) -> str | None:
        """The published version's id (None: nothing published); raises when the store is unreachable."""
        ...

    def collect_garbage_if_idle(self) -> None:
        """Delete versions nobody uses, unless an ingest is running (it does so itself)."""
        ...


class LocalIndex:
    def __init__(self, settings: Settings) -> None:
        self.paths = IndexPaths.for_data_dir(settings.data_dir)

    def current_id(self) -> str | None:
        return self.paths.current_id()

    def collect_garbage_if_idle(self) -> None:
        try:
            with ingest_lock(self.paths):
                self.paths.collect_garbage()
        except StrideError:
            return
        self.paths.empty_trash()  # outside the lock: an ingest starting now need not wait for it


class ServerIndex:
    """The pointer on a Chroma server. Clean-up there belongs to the publisher (``stride ingest``), which
    holds the server's publisher lock; a replica only releases its lease."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._server: Any = None  # connected on first use, again after a failure

    def current_id(self) -> str | None:
        from ingest.chroma_server import ChromaServer

        if self._server is None:
            self._server = ChromaServer.connect(self.url)
        try:
            return self._server.current_id()  # type: ignore[no-any-return]
        except Exception as err:
            self._server = None
            raise IndexUnavailable(f"cannot read the index pointer on {self.url} ({type(err).__name__})") from err

    def collect_garbage_if_idle(self) -> None:
        return None


def index_source(settings: Settings) -> IndexSource:
    return ServerIndex(settings.chroma_url) if settings.chroma_url else LocalIndex(settings)


def require_index(settings: Settings) -> None:
    """IndexMissing (or IndexUnavailable) in one line unless a version is published."""
    published_index_version(settings)


def published_index_version(settings: Settings) -> str:
    """The published version's content hash (``index_version``); IndexMissing when there is none."""
    if settings.chroma_url:
        from ingest.chroma_server import ChromaServer

        server = ChromaServer.connect(settings.chroma_url)
        vid = server.current_id()
        rec = server.read_version(vid) if vid else None
        if rec is None:
            raise IndexMissing(f"no index on {settings.chroma_url} — run `stride ingest`")
        return str(rec.manifest["index_version"])
    return read_manifest(settings.data_dir).index_version
