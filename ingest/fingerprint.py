"""What an ingest's result depends on, as one hash: the corpus files byte for byte, the settings that
shape chunks, the embedding model and the ingest code itself. Equal to the published version's, the
ingest has nothing to do, which it can tell without cleaning an article, loading a model or opening Chroma."""

from __future__ import annotations

import hashlib
from pathlib import Path

from ingest.settings import Settings

_CODE = Path(__file__).resolve().parent  # the ingest package: a changed cleaner or chunker must re-ingest


def source_fingerprint(settings: Settings, corpus_dir: Path, model: str, format_version: int) -> str | None:
    """The hash, or None when the corpus cannot be read (the full ingest then reports why)."""
    h = hashlib.sha256()
    h.update(f"{format_version}\0{model}\0{settings.chunk_target_chars}\0{settings.chunk_max_chars}\0"
             f"{settings.max_file_bytes}\0".encode())
    try:
        for path in sorted(p for p in corpus_dir.iterdir() if p.is_file() and not p.name.startswith(".")):
            h.update(path.name.encode() + b"\0" + hashlib.sha256(path.read_bytes()).digest())
    except OSError:
        return None
    h.update(code_hash().encode())
    return h.hexdigest()


def code_hash() -> str:
    """The hash of the ingest code itself: a changed cleaner or chunker must re-process every article."""
    h = hashlib.sha256()
    for source in sorted(_CODE.glob("*.py")):
        h.update(source.name.encode() + b"\0" + hashlib.sha256(source.read_bytes()).digest())
    return h.hexdigest()
