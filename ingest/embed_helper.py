"""``python -m ingest.embed_helper REQUEST``: embed the texts of a request file (``HelperEmbedding`` in
ingest/embedding.py writes it: an embedder's recipe and the texts) and write their vectors, float32 in the
texts' order, to ``vectors.npy`` beside it. Run by an ingest, so the model's slow import and load use the
second core while the ingest's own process updates the rest of the index."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from ingest.embedding import embeddings_from_recipe


def main(request: Path) -> None:
    raw = json.loads(request.read_text(encoding="utf-8"))
    embeddings = embeddings_from_recipe(raw["recipe"])
    texts: list[str] = raw["texts"]
    embeddings.prefetch(texts)
    vectors = np.asarray(embeddings.embed_documents(texts), dtype=np.float32).reshape(len(texts), -1)
    tmp = request.with_name(".vectors.npy")
    np.save(tmp, vectors)
    tmp.replace(request.with_name("vectors.npy"))  # whole or absent: the ingest never reads half a file


if __name__ == "__main__":
    main(Path(sys.argv[1]))
