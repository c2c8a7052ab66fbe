"""The keyword side of a version, built at ingest so a server loads it instead of rebuilding it.

Under ``<version>/search/``:
  bm25/           bm25s index over every chunk's keyword terms (rows in ``chunk_ids.json`` order), memory-mapped
  chunk_ids.json  the chunk id of each BM25 row
  terms.json      ``mentions``: how many answerable sentences name each stem and stem pair;
                  ``vocabulary``: every word of the indexed text (spelling repair looks words up in it)

Start-up then costs reading these files, not tokenising and stemming every chunk (which grows with
the corpus: 2.2 s for 10k chunks here).
"""

from __future__ import annotations

import json
import shutil
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ingest.models import Chunk
from ingest.terms import keyword_tokens, sentence_mentions, words

SEARCH_DIR = "search"


@dataclass(frozen=True)
class SearchFiles:
    """What the service's keyword search and declining need from the whole corpus."""

    bm25: Any  # bm25s.BM25
    chunk_ids: list[str]  # BM25 row -> chunk id
    mentions: Counter[str]
    vocabulary: frozenset[str]


def build(chunk_ids: Sequence[str], chunks: Sequence[Chunk], indexed_texts: Sequence[str]) -> SearchFiles:
    """The keyword index and term counts of ``chunks`` (aligned with their ids and indexed texts). Pure."""
    import bm25s

    bm25 = bm25s.BM25()
    bm25.index([keyword_tokens(t) or ["_"] for t in indexed_texts], show_progress=False)
    mentions = sentence_mentions(
        c.text[s:e] for c in chunks if not c.is_reference for s, e in c.sentences
    )
    vocabulary = frozenset(w for t in indexed_texts for w in words(t))
    return SearchFiles(bm25, list(chunk_ids), mentions, vocabulary)


def write(root: Path, files: SearchFiles) -> None:
    """Write into ``root`` (a staged version directory; published with it, so never read half-written)."""
    out = root / SEARCH_DIR
    shutil.rmtree(out, ignore_errors=True)  # the staged copy holds the previous version's files
    out.mkdir(parents=True)
    files.bm25.save(str(out / "bm25"), show_progress=False)
    (out / "chunk_ids.json").write_text(json.dumps(files.chunk_ids), encoding="utf-8")
    terms = {"mentions": dict(files.mentions), "vocabulary": sorted(files.vocabulary)}
    (out / "terms.json").write_text(json.dumps(terms, ensure_ascii=False), encoding="utf-8")


def read(root: Path) -> SearchFiles:
    """The files of the version at ``root``; FileNotFoundError when they are missing."""
    import bm25s

    src = root / SEARCH_DIR
    chunk_ids = json.loads((src / "chunk_ids.json").read_text(encoding="utf-8"))
    terms = json.loads((src / "terms.json").read_text(encoding="utf-8"))
    bm25 = bm25s.BM25.load(str(src / "bm25"), mmap=True, show_progress=False)
    return SearchFiles(bm25, chunk_ids, Counter(terms["mentions"]), frozenset(terms["vocabulary"]))
