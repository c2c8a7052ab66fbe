"""Hand-written fakes for the real seams (no MagicMock): a deterministic embedding model, and the
engine built through the production path (real Chroma, real BM25) with that model injected."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from typing import Any

import numpy as np

from ingest.embedding import SentenceEmbeddings
from ingest.settings import Settings
from service.answering.engine import Engine


class HashingModel:
    """Bag-of-words hashed into a fixed number of dimensions, L2-normalised: texts that share words
    have a higher cosine, so retrieval behaves sensibly and scores are exactly reproducible."""

    def __init__(self, dim: int = 256) -> None:
        self.dim = dim
        self.calls = 0
        self.texts_encoded = 0

    def get_embedding_dimension(self) -> int:
        return self.dim

    def encode(self, texts: list[str], **_: Any) -> np.ndarray:
        self.calls += 1
        self.texts_encoded += len(texts)
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for tok in re.findall(r"[a-z0-9]+", text.lower()):
                h = int(hashlib.md5(tok.encode()).hexdigest(), 16)
                out[row, h % self.dim] += 1.0
            norm = np.linalg.norm(out[row])
            out[row] = out[row] / norm if norm else out[row]
        return out


def fake_embeddings_factory(
    model: HashingModel | None = None, name: str | None = None
) -> Callable[[str, int], SentenceEmbeddings]:
    """An ``embeddings_factory`` (ingest, the CLI's Wiring) that never loads torch."""
    shared = model or HashingModel()

    def factory(model_name: str, batch_size: int) -> SentenceEmbeddings:
        return SentenceEmbeddings(name or model_name, batch_size, model=shared)

    return factory


def build_fake_engine(settings: Settings) -> Engine:
    """``Engine.load`` over ``settings``' index with the hashing model: the production query path."""
    return Engine.load(settings, embeddings=SentenceEmbeddings(settings.embedding_model, model=HashingModel()))
