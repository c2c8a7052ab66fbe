"""A version's chunks, one shard per article, written at ingest and read by the service instead of Chroma.

Under ``<version>/chunks/``:
  _articles.json        per article: its content key, chunk ids and planted text (what ingest compares and
                        reports without opening a shard)
  <id>.json             the article's chunks (``chunk_metadata``) and ids, by position
  <id>.vectors.npy      their vectors (float32, a row per chunk)
  <id>.sentences.npy    their sentences' vectors (float32; the rows of each answerable chunk's sentences, in
                        order; reference lists have none), read by the service a chunk's rows at a time
  <id>.terms.json       the article's share of the term counts (``search_files.ArticleTerms``)

Chroma holds the chunk vectors too, for its ANN search, and nothing else. A shard is keyed by a hash of
what the article's chunks depend on (its file's bytes, its manifest entry, the chunk settings, the model,
the ingest code), so an ingest re-reads, cleans, chunks and embeds only articles whose key changed and
keeps the others' shards as they are. Every file here is written whole under a temporary name and renamed
into place, never changed in place: a staged version shares the unchanged ones with the published
version through hard links (``store.stage_from``).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ingest.models import Chunk
from ingest.search_files import ArticleTerms

CHUNKS_DIR = "chunks"
SUMMARY = "_articles.json"  # article ids are slugs, so no shard is called this


@dataclass(frozen=True)
class ShardInfo:
    """What a version's summary says about one article."""

    key: str
    ids: list[str]
    planted: list[dict[str, Any]]  # line, rule, text of each planted sentence (for the ingest report)


def content_key(file: str, data: bytes, manifest_entry: dict[str, Any], config: str) -> str:
    """The hash an article's shard is keyed by; ``config`` covers settings, model and code."""
    h = hashlib.sha256()
    h.update(f"{config}\0{file}\0".encode())
    h.update(json.dumps(manifest_entry, sort_keys=True, ensure_ascii=False).encode() + b"\0")
    h.update(data)
    return h.hexdigest()


def _dir(root: Path) -> Path:
    return root / CHUNKS_DIR


def _save_npy(path: Path, array: np.ndarray) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with tmp.open("wb") as fh:
        np.save(fh, array)
    os.replace(tmp, path)


def _write_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def read_summary(root: Path) -> dict[str, ShardInfo]:
    """The summary of the version at ``root``; FileNotFoundError when it has none."""
    raw = json.loads((_dir(root) / SUMMARY).read_text(encoding="utf-8"))
    return {aid: ShardInfo(v["key"], v["ids"], v["planted"]) for aid, v in raw.items()}


def write_summary(root: Path, summary: dict[str, ShardInfo]) -> None:
    _dir(root).mkdir(parents=True, exist_ok=True)
    raw = {aid: {"key": s.key, "ids": s.ids, "planted": s.planted} for aid, s in sorted(summary.items())}
    _write_text(_dir(root) / SUMMARY, json.dumps(raw, ensure_ascii=False))


def write_shard(root: Path, article_id: str, ids: Sequence[str], metadatas: Sequence[dict[str, Any]],
                vectors: np.ndarray, sentence_vectors: np.ndarray, terms: ArticleTerms) -> None:
    d = _dir(root)
    d.mkdir(parents=True, exist_ok=True)
    _save_npy(d / f"{article_id}.vectors.npy", np.asarray(vectors, dtype=np.float32))
    _save_npy(d / f"{article_id}.sentences.npy", np.asarray(sentence_vectors, dtype=np.float32))
    _write_text(d / f"{article_id}.terms.json", json.dumps(terms.as_json(), ensure_ascii=False))
    _write_text(d / f"{article_id}.json", json.dumps({"ids": list(ids), "chunks": list(metadatas)},
                                                     ensure_ascii=False))


def remove_shard(root: Path, article_id: str) -> None:
    for suffix in (".json", ".vectors.npy", ".sentences.npy", ".terms.json"):
        (_dir(root) / f"{article_id}{suffix}").unlink(missing_ok=True)


def read_terms(root: Path, article_id: str) -> ArticleTerms:
    return ArticleTerms.from_json(json.loads((_dir(root) / f"{article_id}.terms.json").read_text(encoding="utf-8")))


@dataclass(frozen=True)
class Shard:
    ids: list[str]
    metadatas: list[dict[str, Any]]
    vectors: np.ndarray  # memory-mapped
    sentences: np.ndarray  # memory-mapped


def read_shard(root: Path, article_id: str) -> Shard:
    """An article's shard for ingest, its arrays memory-mapped (ingest reads the few it reuses)."""
    d = _dir(root)
    raw = json.loads((d / f"{article_id}.json").read_text(encoding="utf-8"))
    return Shard(raw["ids"], raw["chunks"], np.load(d / f"{article_id}.vectors.npy", mmap_mode="r"),
                 np.load(d / f"{article_id}.sentences.npy", mmap_mode="r"))


@dataclass(frozen=True)
class MatrixFile:
    """A float32 matrix in an ``.npy`` file, read without mapping it: ``rows`` rows of ``dim`` from byte ``offset``."""

    path: Path
    offset: int
    rows: int
    dim: int

    @classmethod
    def open(cls, path: Path) -> MatrixFile:
        with path.open("rb") as fh:
            major, _ = np.lib.format.read_magic(fh)
            read_header = np.lib.format.read_array_header_1_0 if major == 1 else np.lib.format.read_array_header_2_0
            shape, fortran, dtype = read_header(fh)
            offset = fh.tell()
        if dtype != np.dtype("<f4") or fortran or len(shape) not in (1, 2) or (len(shape) == 1 and shape[0]):
            raise ValueError(f"{path.name}: not a C-order float32 matrix")
        return cls(path, offset, int(shape[0]) if len(shape) == 2 else 0, int(shape[1]) if len(shape) == 2 else 0)

    def read_rows(self, start: int, end: int) -> np.ndarray:
        """Rows ``start:end`` (a new array; one ``pread``)."""
        size = (end - start) * self.dim * 4
        fd = os.open(self.path, os.O_RDONLY)
        try:
            data = os.pread(fd, size, self.offset + start * self.dim * 4)
        finally:
            os.close(fd)
        if len(data) != size:
            raise ValueError(f"{self.path.name} is shorter than its header says")
        return np.frombuffer(data, dtype="<f4").reshape(end - start, self.dim).astype(np.float32)

    def read_into(self, out: np.ndarray) -> None:
        """All rows, into ``out`` (C-contiguous float32, ``rows`` x ``dim``): no array of its own in between."""
        with self.path.open("rb") as fh:
            fh.seek(self.offset)
            if fh.readinto(out.data.cast("B")) != self.rows * self.dim * 4:
                raise ValueError(f"{self.path.name} is shorter than its header says")


def read_shard_for_serving(root: Path, article_id: str) -> tuple[list[str], list[dict[str, Any]], MatrixFile,
                                                                   MatrixFile]:
    """An article's chunk ids and chunks, and where its chunk and sentence vectors are (neither read yet)."""
    d = _dir(root)
    raw = json.loads((d / f"{article_id}.json").read_text(encoding="utf-8"))
    return (raw["ids"], raw["chunks"], MatrixFile.open(d / f"{article_id}.vectors.npy"),
            MatrixFile.open(d / f"{article_id}.sentences.npy"))


def sentence_rows(chunks: Sequence[Chunk]) -> list[tuple[int, int]]:
    """Each chunk's rows in its article's sentence array (a reference list has none)."""
    out, row = [], 0
    for c in chunks:
        n = 0 if c.is_reference else len(c.sentences)
        out.append((row, row + n))
        row += n
    return out


class ShardSentences:
    """The sentence vectors of a version, read from its shards' files as questions need them: a chunk's
    rows are one ``pread``. Not memory-mapped: mapped pages count in the server's RSS for as long as the
    mapping lives, and the kernel maps in the pages around each page touched (far more than the few rows
    a question reads), so a server's RSS grew with every chunk it ever read. Read this way, the rows pass
    through the page cache, which the kernel manages, and only the copies a question keeps are the server's."""

    def __init__(self, dim: int) -> None:
        self.dim = dim
        self._where: dict[str, tuple[MatrixFile, int, int]] = {}

    def add(self, ids: Sequence[str], chunks: Sequence[Chunk], sentences: MatrixFile) -> None:
        rows = sentence_rows(chunks)
        if sentences.rows and not self.dim:
            self.dim = sentences.dim
        if (rows[-1][1] if rows else 0) != sentences.rows or (sentences.rows and sentences.dim != self.dim):
            raise ValueError(f"{sentences.path.name} does not match its chunks")
        for cid, (start, end) in zip(ids, rows, strict=True):
            self._where[cid] = (sentences, start, end)

    def of(self, chunk_id: str) -> np.ndarray:
        """The chunk's sentence vectors, one row per sentence (a copy; none for a reference list)."""
        file, start, end = self._where[chunk_id]
        return file.read_rows(start, end) if end > start else np.zeros((0, self.dim), np.float32)
