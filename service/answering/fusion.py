"""Score fusion for hybrid retrieval. Pure."""

from __future__ import annotations

import numpy as np


def weighted_fusion(dense: np.ndarray, keyword: np.ndarray, dense_weight: float,
                    top: float | None = None) -> np.ndarray:
    """``dense_weight`` * cosine + (1 - ``dense_weight``) * BM25 scaled to [0, 1] by its best score
    (``top``: the best over the whole corpus, when ``keyword`` holds only part of it).

    Dense cosines are kept on their own scale (not min-max'd) so that a query that matches nothing
    well stays low, which abstention relies on.
    """
    top = float(keyword.max(initial=0.0)) if top is None else top
    kw = keyword / top if top > 0 else np.zeros_like(keyword)
    return dense_weight * dense + (1.0 - dense_weight) * kw


def rrf_fusion(dense: np.ndarray, keyword: np.ndarray, k: int = 60) -> np.ndarray:
    """Reciprocal rank fusion of two full score vectors (higher is better)."""

    def ranks(s: np.ndarray) -> np.ndarray:
        order = np.argsort(-s, kind="stable")
        r = np.empty(len(s), dtype=np.float64)
        r[order] = np.arange(1, len(s) + 1)
        return r

    return 1.0 / (k + ranks(dense)) + 1.0 / (k + ranks(keyword))
