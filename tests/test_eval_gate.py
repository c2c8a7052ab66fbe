"""CI gate: the eval suite on the test split, with the real model. Fails on a floor or a regression."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from evals.dataset import load_items
from evals.harness import evaluate
from evals.report import get

EVALS = Path(__file__).resolve().parent.parent / "evals"


@pytest.fixture(scope="module")
def test_split_result(real_engine, real_settings):
    return evaluate(real_engine, load_items("test"), real_settings.corpus_dir, with_baseline=True)


def _path(name: str) -> tuple[str, ...]:
    return tuple(name.split("."))


@pytest.mark.eval
@pytest.mark.model
def test_metrics_stay_above_their_floors(test_split_result) -> None:
    gate = json.loads((EVALS / "gate.json").read_text())
    low = {k: get(test_split_result, _path(k)) for k, floor in gate["floors"].items()
           if (get(test_split_result, _path(k)) or 0.0) < floor}
    high = {k: get(test_split_result, _path(k)) for k, ceil in gate["ceilings"].items()
            if (get(test_split_result, _path(k)) or 0.0) > ceil}
    assert not low and not high, f"below floor: {low}; above ceiling: {high}"


@pytest.mark.eval
@pytest.mark.model
def test_no_metric_drops_more_than_the_margin_from_committed_results(test_split_result) -> None:
    gate = json.loads((EVALS / "gate.json").read_text())
    committed = json.loads((EVALS / "results" / "test.json").read_text())
    drops = {}
    for name in gate["tracked"]:
        now, before = get(test_split_result, _path(name)), get(committed, _path(name))
        if now is not None and before is not None and before - now > gate["max_drop"]:
            drops[name] = (round(before, 3), round(now, 3))
    assert not drops, f"dropped more than {gate['max_drop']} from evals/results/test.json: {drops}"


@pytest.mark.eval
@pytest.mark.model
def test_stride_beats_the_langchain_baseline_on_retrieval_and_abstention(test_split_result) -> None:
    base = test_split_result["baseline"]
    assert test_split_result["retrieval"]["mrr@10"] > base["retrieval"]["mrr@10"]
    assert test_split_result["retrieval"]["recall@5"] > base["retrieval"]["recall@5"]
    assert test_split_result["abstain"]["f1"] > base["abstain"]["f1"]
    assert test_split_result["answer_words"] < base["answer_words"]
