"""Fit the chunk-ranking weights on the dev split: which retrieved chunks hold gold evidence.

A logistic regression (scikit-learn) over ``service.answering.ranking.RANKING_FEATURES``, standardised;
its strength C is chosen by cross-validation with the folds grouped by question, scored by the
held-out questions' MRR@10 (the rank of the first chunk holding gold evidence). The hand-set order is
scored on the same folds beside it, so the gain is measured, not assumed.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from evals.dataset import Item
from evals.harness import gold_spans
from evals.scoring import Passage, ranks_of_gold, retrieval_metrics, run_over_evidence, span_holders
from service.answering.engine import Engine
from service.answering.query import Turn
from service.answering.ranking import RANKING_FEATURES, RankingModel, ranking_features
from service.answering.rerank import SentenceReranker

C_GRID = (0.01, 0.03, 0.1, 0.3, 1.0, 3.0)


@dataclass
class Labelled:
    x: np.ndarray  # features, one row per candidate chunk
    y: np.ndarray  # 1 when the chunk holds at least half of a gold span
    groups: np.ndarray  # the question each row belongs to
    spans: list[set[int]]  # the gold spans each chunk holds
    gold: dict[int, int]  # question -> number of gold spans found in the articles


def labelled_hits(engine: Engine, items: list[Item]) -> Labelled:
    """Every candidate chunk of every answerable item, in the hand-set order, with its features."""
    base = engine.with_parts(reranker=SentenceReranker(engine.retrieval.sentence_weight))
    texts = {aid: a.text for aid, a in engine.articles().items()}
    xs: list[np.ndarray] = []
    spans: list[set[int]] = []
    groups: list[int] = []
    gold_n: dict[int, int] = {}
    for g, item in enumerate(i for i in items if i.answerable):
        gold = gold_spans(item, texts)
        if not gold:
            continue
        query, qvec, hits = base.retrieve(item.question, [Turn(r, c) for r, c in item.history],
                                          k=engine.retrieval.candidates, answerable_only=True)
        sims = [engine.search_index.sentence_sims(h.index, qvec) for h in hits]
        passages = [Passage(h.chunk_id, h.chunk.article_id, h.chunk.start, h.chunk.end) for h in hits]
        holders = span_holders(passages, gold)
        xs.append(ranking_features(query, hits, sims))
        spans.extend(holders.get(i, set()) for i in range(len(hits)))
        groups.extend([g] * len(hits))
        gold_n[g] = len(gold)
    x = np.concatenate(xs) if xs else np.zeros((0, len(RANKING_FEATURES)))
    y = np.array([int(bool(s)) for s in spans])
    return Labelled(x, y, np.asarray(groups), spans, gold_n)


def ranked_metrics(scores: np.ndarray, data: Labelled) -> dict[str, float]:
    """Recall@1 (share of gold spans the top chunk holds) and MRR@10 of each question's ranking by
    ``scores``, measured as ``stride eval`` measures retrieval (``evals.scoring``)."""
    runs: dict[str, dict[str, float]] = {}
    qrels: dict[str, dict[str, int]] = {}
    ranks: dict[str, list[int | None]] = {}
    for g in np.unique(data.groups):
        rows = np.flatnonzero(data.groups == g)
        order = rows[np.argsort(-scores[rows], kind="stable")]
        doc_ids = [str(i) for i in order]
        owners = {k: data.spans[i] for k, i in enumerate(order) if data.spans[i]}
        runs[str(g)] = run_over_evidence(doc_ids, owners)
        qrels[str(g)] = {f"gold{i}": 1 for i in range(data.gold[g])}
        ranks[str(g)] = ranks_of_gold(doc_ids, owners, data.gold[g])
    measured = retrieval_metrics(runs, qrels, ranks)
    return {"recall@1": measured["recall@1"], "mrr@10": measured["mrr@10"]}


def _model(c: float) -> Any:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=3000, class_weight="balanced"))


def fit_ranking(engine: Engine, items: list[Item]) -> tuple[RankingModel, dict[str, Any]]:
    from sklearn.model_selection import GroupKFold

    if any(i.split != "dev" for i in items):
        raise ValueError("ranking weights are fitted on the dev split only")
    data = labelled_hits(engine, items)
    if not data.y.any():
        raise ValueError("no retrieved chunk holds gold evidence — is the index built from this corpus?")
    folds = list(GroupKFold(n_splits=5).split(data.x, data.y, data.groups))
    hand_set = -np.concatenate([np.arange((data.groups == g).sum()) for g in np.unique(data.groups)]).astype(float)
    results: dict[float, dict[str, float]] = {}
    for c in C_GRID:
        held_out = np.zeros(len(data.y))
        for train, held in folds:
            held_out[held] = _model(c).fit(data.x[train], data.y[train]).decision_function(data.x[held])
        results[c] = ranked_metrics(held_out, data)
    best_c = max(C_GRID, key=lambda c: (results[c]["mrr@10"], results[c]["recall@1"], -c))
    final = _model(best_c).fit(data.x, data.y)
    scaler, lr = final[0], final[-1]
    summary = {
        "features": list(RANKING_FEATURES),
        "mean": [round(float(v), 6) for v in scaler.mean_],
        "scale": [round(float(v), 6) for v in scaler.scale_],
        "coef": [round(float(v), 5) for v in lr.coef_[0]],
        "intercept": round(float(lr.intercept_[0]), 5),
        "C": best_c,
        "cv_by_C": {str(c): {k: round(v, 4) for k, v in m.items()} for c, m in results.items()},
        "hand_set_order": {k: round(v, 4) for k, v in ranked_metrics(hand_set, data).items()},
        "candidates": len(data.y),
        "positives": int(data.y.sum()),
        "fitted_on": f"dev ({len(data.gold)} answerable questions)",
        "fitted_at": time.strftime("%Y-%m-%d"),
    }
    model = RankingModel(tuple(float(v) for v in scaler.mean_), tuple(float(v) for v in scaler.scale_),
                         tuple(float(v) for v in lr.coef_[0]), float(lr.intercept_[0]), "fitted now")
    return model, summary
