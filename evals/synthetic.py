"""Synthetic corpora for the scale benchmark (``evals/bench_scale.py``): markdown articles whose
sentences are real ones from the shipped articles, recombined with a seeded random generator, so the
chunker, BM25 and the answerer see realistic text; and a fast deterministic embedder that stands in
for the model while such a corpus is indexed (query cost does not depend on what the vectors mean).
"""

from __future__ import annotations

import hashlib
import random
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ingest.embedding import SentenceEmbeddings
from ingest.pipeline import prepare, sentence_texts
from ingest.settings import Settings

DIM = 384  # all-MiniLM-L6-v2's dimension: a real `stride serve` must accept the index
TOKEN = re.compile(r"[a-z0-9]+")


class HashingEmbedder:
    """Bag of words hashed into ``dim`` signed buckets (two per word), L2-normalised: deterministic,
    texts that share words have a higher cosine, and ~1 µs a word instead of a transformer's ~ms a text."""

    def __init__(self, dim: int = DIM) -> None:
        self.dim = dim
        self.seconds = 0.0  # spent in encode, so a caller can tell embedding from indexing
        self._slots: dict[str, tuple[int, int, float, float]] = {}

    def get_embedding_dimension(self) -> int:
        return self.dim

    def _slot(self, token: str) -> tuple[int, int, float, float]:
        slot = self._slots.get(token)
        if slot is None:
            h = int.from_bytes(hashlib.blake2b(token.encode(), digest_size=8).digest(), "little")
            slot = (h % self.dim, (h >> 20) % self.dim, 1.0 if h >> 40 & 1 else -1.0, 0.5 if h >> 41 & 1 else -0.5)
            self._slots[token] = slot
        return slot

    def encode(self, texts: list[str], **_: Any) -> np.ndarray:
        started = time.perf_counter()
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            vec = out[row]
            for tok in TOKEN.findall(text.lower()):
                a, b, sa, sb = self._slot(tok)
                vec[a] += sa
                vec[b] += sb
            norm = float(np.linalg.norm(vec))
            if norm:
                vec /= norm
            else:
                vec[0] = 1.0
        self.seconds += time.perf_counter() - started
        return out


def hashing_embeddings_factory(model: HashingEmbedder) -> Callable[[str, int], SentenceEmbeddings]:
    """An ``embeddings_factory`` for ``run_ingest`` that records the configured model's name (so a real
    server with the real model accepts the index) but embeds with ``model``."""

    def factory(model_name: str, batch_size: int) -> SentenceEmbeddings:
        return SentenceEmbeddings(model_name, batch_size, model=model)

    return factory


@dataclass(frozen=True)
class Pool:
    """What synthetic articles are made of, all taken from a real corpus."""

    sentences: list[str]
    headings: list[str]
    titles: list[str]


def sentence_pool(corpus_dir: Path, settings: Settings | None = None) -> Pool:
    """Whole prose sentences (not list items, table rows or references), section headings and titles."""
    articles, chunks = prepare(settings or Settings(), corpus_dir)
    sentences: list[str] = []
    seen: set[str] = set()
    for c in chunks:
        if c.kind != "paragraph":
            continue
        for s in sentence_texts(c):
            s = s.strip()
            if 40 <= len(s) <= 280 and s[-1] in ".!" and "\n" not in s and s[0].isupper() and s not in seen:
                seen.add(s)
                sentences.append(s)
    headings = sorted({part.lstrip("0123456789. ") for a in articles for sec in a.sections for part in sec.path
                       if 3 <= len(part) <= 70 and not part.lower().startswith(("faq", "reference"))})
    return Pool(sentences, headings, sorted(a.title for a in articles))


def _paragraph(rng: random.Random, pool: Pool, low: int, high: int) -> str:
    """Sentences drawn until the paragraph is between ``low`` and ``high`` characters long."""
    want = rng.randint(low, high)
    out: list[str] = []
    size = 0
    while size < want:
        # Below ``low`` there is always room (sentences are at most 280 characters), so this ends the
        # paragraph only once it is long enough.
        fits = [s for s in rng.sample(pool.sentences, k=8) if size + len(s) + 1 <= high]
        if not fits:
            break
        out.append(fits[0])
        size += len(fits[0]) + 1
    return " ".join(out)


def article_text(rng: random.Random, pool: Pool, number: int, sections: int, paragraphs: int) -> str:
    """One markdown article: a ``#`` title, an intro paragraph, ``sections`` ``##`` sections of
    ``paragraphs`` paragraphs each. A paragraph is 600-950 characters: over half the chunk target, so
    two never share a chunk, and under it, so none is split — one paragraph, one chunk."""
    title = f"{rng.choice(pool.titles)} (part {number})"
    parts = [f"# {title}", _paragraph(rng, pool, 600, 950)]
    for heading in rng.sample(pool.headings, k=min(sections, len(pool.headings))):
        parts.append(f"## {heading}")
        parts.extend(_paragraph(rng, pool, 600, 950) for _ in range(paragraphs))
    return "\n\n".join(parts) + "\n"


def write_corpus(out: Path, articles: int, pool: Pool, *, seed: int = 11, sections: int = 5,
                 paragraphs: int = 4, lexicon: Path | None = None) -> list[Path]:
    """``articles`` files ``a000000.md``... in ``out`` (about ``1 + sections * paragraphs`` chunks each),
    plus the lexicon when given. Same arguments, same bytes."""
    out.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    files = []
    for n in range(articles):
        path = out / f"a{n:06d}.md"
        path.write_text(article_text(rng, pool, n, sections, paragraphs), encoding="utf-8")
        files.append(path)
    if lexicon is not None and lexicon.exists():
        (out / lexicon.name).write_bytes(lexicon.read_bytes())
    return files
