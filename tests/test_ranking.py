"""Learned chunk ranking: the features on the real articles (fast-tier index), the reranker's order,
the weights file's contract, and the fit's metrics on hand-made rankings."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from evals.dataset import load_items
from evals.rank_fit import Labelled, fit_ranking, ranked_metrics
from service.answering.query import Query
from service.answering.ranking import RANKING_FEATURES, SHIPPED_RANKING, RankingModel, ranking_features
from service.answering.rerank import LearnedReranker, SentenceReranker
from service.answering.retrieval import Hit, SearchIndex

MUSCLES = "what-muscles-does-running-work"
COL = {name: i for i, name in enumerate(RANKING_FEATURES)}


@pytest.fixture
def index(fake_index) -> SearchIndex:
    from service.answering.engine import open_search_index

    return open_search_index(fake_index, fake_index.embedding_model)


def opening_chunks(index: SearchIndex, n: int) -> list[Hit]:
    """The muscles article's first ``n`` chunks: its introduction, then the At-a-Glance list."""
    found = sorted((sc.chunk.position, i) for i, sc in enumerate(index.chunks) if sc.chunk.article_id == MUSCLES)
    return [Hit(i, index.chunks[i].chunk_id, index.chunks[i].chunk, 0.5, 2.0 - p, 1.0 - 0.1 * p, score=1.0 - 0.1 * p,
                hand_set=1.0 - 0.1 * p) for p, i in found[:n]]


def asking_for_muscles() -> Query:
    return Query("which muscles does running use", "which muscles does running use", [], [],
                 ["muscles", "running", "use"], 1.0, answer_type="set", focus=["muscles", "running"])


def model_weighting(feature: str) -> RankingModel:
    zeros = [0.0] * len(RANKING_FEATURES)
    coef = list(zeros)
    coef[COL[feature]] = 3.0
    return RankingModel(tuple(zeros), tuple([1.0] * len(zeros)), tuple(coef), 0.0, "test")


def test_features_read_the_question_against_each_chunk(index: SearchIndex) -> None:
    intro, glance = opening_chunks(index, 2)
    assert intro.chunk.position == 0 and glance.chunk.kind == "list"
    sims = [np.array([0.2, 0.6, 0.4]), np.array([0.9])]
    x = ranking_features(asking_for_muscles(), [intro, glance], sims)

    assert x.shape == (2, len(RANKING_FEATURES))
    assert x[:, COL["article_opening"]].tolist() == [1.0, 0.0]
    # a set was asked for: the list answers it, the introduction's prose does not
    assert x[:, COL["set_list"]].tolist() == [0.0, 1.0]
    assert x[:, COL["kind_list"]].tolist() == [0.0, 1.0]
    # "At a Glance: Muscles Used in Running" names both focus words; the introduction has no heading
    assert x[:, COL["focus_in_heading"]].tolist() == [0.0, 1.0]
    assert x[:, COL["keyword"]].tolist() == [1.0, 0.5]  # relative to the best candidate's BM25
    assert x[0, COL["best_sentence"]] == pytest.approx(0.6)
    assert x[0, COL["second_sentence"]] == pytest.approx(0.4)
    assert x[0, COL["top3_sentences"]] == pytest.approx(0.4)
    assert x[1, COL["second_sentence"]] == pytest.approx(0.9)  # one sentence: its own second best
    assert x[:, COL["base_gap"]].tolist() == pytest.approx([0.0, -0.1])
    assert x[:, COL["base_rank"]].tolist() == pytest.approx([0.0, np.log(2)])


def test_the_learned_weights_reorder_the_hand_set_order(index: SearchIndex) -> None:
    hits = opening_chunks(index, 4)
    qvec = np.zeros(index.chunk_vectors.shape[1], dtype=np.float32)
    ranked = LearnedReranker(model_weighting("kind_list"), SentenceReranker(0.5)).rerank(
        asking_for_muscles(), qvec, list(hits), index)

    kinds = [h.chunk.kind for h in ranked]
    assert kinds.index("paragraph") > max(i for i, k in enumerate(kinds) if k == "list")
    assert all(0.0 < h.score < 1.0 for h in ranked)  # a probability, as /search reports it
    assert [h.score for h in ranked] == sorted((h.score for h in ranked), reverse=True)
    # the hand-set score (fused + 0.5 x best sentence, here 0) is kept beside the learned one
    assert {h.chunk_id: h.hand_set for h in ranked} == {h.chunk_id: h.fused for h in hits}


def test_weights_that_learned_nothing_keep_the_hand_set_order(index: SearchIndex) -> None:
    hits = opening_chunks(index, 4)
    qvec = np.zeros(index.chunk_vectors.shape[1], dtype=np.float32)
    zeros = tuple(0.0 for _ in RANKING_FEATURES)
    neutral = RankingModel(zeros, tuple(1.0 for _ in zeros), zeros, 0.0)
    expected = [h.chunk_id for h in SentenceReranker(0.5).order(list(hits), [np.zeros(1)] * len(hits))]

    # handed over in the reverse order: the hand-set order is made again, and nothing learned moves it
    ranked = LearnedReranker(neutral, SentenceReranker(0.5)).rerank(asking_for_muscles(), qvec, hits[::-1], index)

    assert [h.chunk_id for h in ranked] == expected


def test_a_weights_file_fitted_on_other_features_is_refused(tmp_path: Path) -> None:
    shipped = json.loads(SHIPPED_RANKING.read_text(encoding="utf-8"))
    stale = tmp_path / "ranking.json"
    stale.write_text(json.dumps(shipped | {"features": shipped["features"][:-1]}), encoding="utf-8")

    with pytest.raises(ValueError, match=r"python -m evals\.tune ranking"):
        RankingModel.load(stale)
    assert RankingModel.load().source == "ranking.json"


def test_ranked_metrics_count_what_the_top_chunk_holds_and_the_first_gold_rank() -> None:
    # question 0: the second chunk holds both gold spans; question 1: the first holds one of two
    data = Labelled(
        x=np.zeros((5, len(RANKING_FEATURES))),
        y=np.array([0, 1, 0, 1, 0]),
        groups=np.array([0, 0, 0, 1, 1]),
        spans=[set(), {0, 1}, set(), {1}, set()],
        gold={0: 2, 1: 2},
    )
    as_listed = np.array([3.0, 2.0, 1.0, 2.0, 1.0])
    assert ranked_metrics(as_listed, data) == {"recall@1": pytest.approx(0.25), "mrr@10": pytest.approx(0.75)}
    promoted = np.array([1.0, 3.0, 2.0, 2.0, 1.0])
    assert ranked_metrics(promoted, data) == {"recall@1": pytest.approx(0.75), "mrr@10": pytest.approx(1.0)}


def test_the_ranking_is_fitted_on_the_dev_split_only() -> None:
    with pytest.raises(ValueError, match="dev split only"):
        fit_ranking(None, load_items("test"))  # type: ignore[arg-type]  # refused before the engine is used
