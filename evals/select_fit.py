"""Fit the answer-selection weights on the dev split: which candidate units overlap the gold evidence.

A logistic regression (scikit-learn) over ``service.answering.selection.FEATURES``; its strength C is
chosen by cross-validation with the folds grouped by question, scored by how often the top-ranked
candidate of a held-out question is a gold one. The caller writes the result where it chooses.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from evals.dataset import Item
from evals.harness import gold_spans
from evals.scoring import overlaps
from service.answering.engine import Engine
from service.answering.query import Turn
from service.answering.selection import FEATURES, SelectionModel, features

C_GRID = (0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0)


def labelled_candidates(engine: Engine, items: list[Item]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Features, 0/1 labels and question groups of every candidate unit of every answerable item."""
    texts = {aid: a.text for aid, a in engine.articles().items()}
    xs, ys, groups = [], [], []
    for g, item in enumerate(i for i in items if i.answerable):
        gold = gold_spans(item, texts)
        query, qvec, cands, top_score = engine.candidates(item.question, [Turn(r, c) for r, c in item.history])
        if not cands:
            continue
        x = features(query, qvec, cands, top_score)
        for c, row in zip(cands, x, strict=True):
            span = (c.hit.chunk.start + c.start, c.hit.chunk.start + c.end)
            hit = any(
                aid == c.hit.chunk.article_id
                and (ov := overlaps(span, (gs, ge))) > 0
                and (ov >= 0.5 * (ge - gs) or ov >= 0.5 * (span[1] - span[0]))
                for aid, gs, ge in gold
            )
            xs.append(row)
            ys.append(int(hit))
            groups.append(g)
    return np.asarray(xs), np.asarray(ys), np.asarray(groups)


def _top1(model: Any, x: np.ndarray, y: np.ndarray, groups: np.ndarray) -> float:
    scores = model.decision_function(x)
    hits = [y[groups == g][np.argmax(scores[groups == g])] for g in np.unique(groups)]
    return float(np.mean(hits))


def fit_selection(engine: Engine, items: list[Item]) -> tuple[SelectionModel, dict[str, Any]]:
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GroupKFold

    if any(i.split != "dev" for i in items):
        raise ValueError("selection weights are fitted on the dev split only")
    x, y, groups = labelled_candidates(engine, items)
    folds = GroupKFold(n_splits=5)
    results = {}
    for c in C_GRID:
        scores = []
        for train, held in folds.split(x, y, groups):
            model = LogisticRegression(C=c, max_iter=2000, class_weight="balanced").fit(x[train], y[train])
            scores.append(_top1(model, x[held], y[held], groups[held]))
        results[c] = float(np.mean(scores))
    best_c = max(C_GRID, key=lambda c: (results[c], -c))
    final = LogisticRegression(C=best_c, max_iter=2000, class_weight="balanced").fit(x, y)
    coef = tuple(round(float(v), 5) for v in final.coef_[0])
    intercept = round(float(final.intercept_[0]), 5)
    summary = {
        "features": list(FEATURES),
        "coef": list(coef),
        "intercept": intercept,
        "C": best_c,
        "cv_top1_by_C": {str(k): round(v, 4) for k, v in results.items()},
        "candidates": len(y),
        "positives": int(y.sum()),
        "fitted_on": f"dev ({len(np.unique(groups))} answerable questions)",
        "fitted_at": time.strftime("%Y-%m-%d"),
    }
    return SelectionModel(coef, intercept, "fitted now"), summary
