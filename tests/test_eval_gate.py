"""CI gate: the eval suite on the test split, with the real model. Fails on a floor or a regression."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from evals.dataset import load_items
from evals.harness import evaluate
from evals.report import get
from ingest.corpus import raw_texts
from ingest.embedding import load_embeddings

EVALS = Path(__file__).resolve().parent.parent / "evals"


@pytest.fixture(scope="module")
def eval_result(real_engine, real_settings):
    raw = raw_texts(real_settings.corpus_dir, real_settings.max_file_bytes)
    return evaluate(real_engine, load_items("test"), raw, load_embeddings(real_settings.embedding_model))


def _path(name: str) -> tuple[str, ...]:
    return tuple(name.split("."))


def test_metrics_stay_above_their_floors(eval_result) -> None:
    gate = json.loads((EVALS / "gate.json").read_text())
    low = {k: get(eval_result, _path(k)) for k, floor in gate["floors"].items()
           if (get(eval_result, _path(k)) or 0.0) < floor}
    high = {k: get(eval_result, _path(k)) for k, ceil in gate["ceilings"].items()
            if (get(eval_result, _path(k)) or 0.0) > ceil}
    assert not low and not high, f"below floor: {low}; above ceiling: {high}"


def test_no_metric_drops_more_than_the_margin_from_committed_results(eval_result) -> None:
    gate = json.loads((EVALS / "gate.json").read_text())
    committed = json.loads((EVALS / "results" / "test.json").read_text())
    drops = {}
    for name in gate["tracked"]:
        now, before = get(eval_result, _path(name)), get(committed, _path(name))
        if now is not None and before is not None and before - now > gate["max_drop"]:
            drops[name] = (round(before, 3), round(now, 3))
    assert not drops, f"dropped more than {gate['max_drop']} from evals/results/test.json: {drops}"


def test_stride_beats_the_langchain_baseline_on_retrieval_and_abstention(eval_result) -> None:
    base = eval_result["baseline"]
    assert eval_result["retrieval"]["mrr@10"] > base["retrieval"]["mrr@10"]
    assert eval_result["retrieval"]["recall@5"] > base["retrieval"]["recall@5"]
    assert eval_result["abstain"]["f1"] > base["abstain"]["f1"]
    assert eval_result["answer_words"] < base["answer_words"]


def test_answering_adds_to_retrieval_alone(eval_result) -> None:
    """Beside the same hybrid retrieval's top chunk cut to the same budget: more key facts, no hygiene defects."""
    hybrid = eval_result["baseline_hybrid"]
    assert eval_result["fact_coverage"] > hybrid["fact_coverage"] > 0
    assert eval_result["hygiene_defects"] == 0 < hybrid["hygiene_defects"]
