"""The offline metrics that gate CI, and the abstention calibration objective."""

from __future__ import annotations

import math

import pytest

from evals.calibrate import fit_calibration, score_threshold
from evals.dataset import Item
from evals.scoring import (
    Passage,
    answer_words,
    cited_sentence_share,
    evidence_run,
    fact_coverage,
    failure_class,
    gold_ranks,
    hygiene_defects,
    locate,
    normalise_text,
    overlaps,
    percentile,
    prf,
    retrieval_metrics,
)


def test_normalise_text_folds_case_dashes_quotes_ligatures_and_whitespace() -> None:
    assert normalise_text("Hip–Flexor’s  “ﬁbres”\n") == 'hip-flexor\'s "fibres" '


def test_fact_coverage_counts_groups_with_any_alternative_present() -> None:
    answer = "The glutes extend the hip [1]. Squats build them [2]."
    facts = [["hip extension", "extend the hip"], ["single-leg"], ["squats"]]
    assert fact_coverage(answer, facts) == pytest.approx(2 / 3, abs=1e-12)


def test_fact_coverage_ignores_citation_markers_and_normalises_alternatives() -> None:
    assert fact_coverage("Glutes extend the hip [1] and do single-leg work.", [["hip and do single–leg"]]) == 1.0


def test_fact_coverage_with_no_facts_is_full() -> None:
    assert fact_coverage("anything", []) == 1.0


def test_answer_words_do_not_count_markers() -> None:
    assert answer_words("Glutes extend the hip. [1] Squats help. [2] [3]") == 6


def test_a_list_laid_out_as_lines_has_the_words_and_facts_of_the_same_text_run_on() -> None:
    lines = "Glute exercises include:\n- Squats. [1]\n- Lunges. [1]\n\nThe hip-hinge - done well - helps. [2]"
    run_on = "Glute exercises include: Squats. [1] Lunges. [1] The hip-hinge - done well - helps. [2]"
    assert answer_words(lines) == answer_words(run_on) == 12  # a bullet is layout; a dash in a sentence counts
    facts = [["include: squats. lunges"], ["hinge - done"]]
    assert fact_coverage(lines, facts) == fact_coverage(run_on, facts) == 1.0


def test_cited_sentence_share_is_the_share_of_sentences_a_marker_follows() -> None:
    answer = "Glutes extend the hip. [1] They also steady the pelvis. Squats help. [2]"
    assert cited_sentence_share(answer) == pytest.approx(2 / 3, abs=1e-12)
    assert cited_sentence_share("") == 0.0
    assert cited_sentence_share("[1]") == 0.0


def test_locate_and_overlaps() -> None:
    assert locate("abcdcd", "cd") == (2, 4)
    assert locate("abc", "x") is None
    assert overlaps((0, 10), (5, 20)) == 5
    assert overlaps((2, 4), (0, 10)) == 2
    assert overlaps((0, 5), (5, 9)) == 0  # touching
    assert overlaps((0, 2), (7, 9)) == 0  # apart


def test_evidence_run_maps_passages_to_the_gold_spans_they_hold() -> None:
    gold = [("a", 100, 200), ("a", 300, 340), ("b", 0, 50)]
    passages = [
        Passage("c0", "a", 150, 260),  # half of gold0: stands for it
        Passage("c1", "a", 0, 120),  # a fifth of gold0: keeps its own id
        Passage("c2", "a", 90, 210),  # all of gold0, already emitted: keeps its own id
        Passage("c3", "b", 0, 30),  # 30 of 50 chars of gold2
        Passage("c1", "a", 0, 120),  # a repeated id is not ranked twice
        Passage("c4", "a", 310, 330),  # exactly half of gold1
    ]
    assert evidence_run(passages, gold) == {
        "gold0": 1000.0, "p:c1": 999.0, "p:c2": 998.0, "gold2": 997.0, "gold1": 996.0
    }


def test_evidence_run_lets_one_passage_stand_for_several_spans_in_gold_order() -> None:
    gold = [("a", 300, 340), ("a", 100, 200), ("b", 100, 200)]  # gold2 is in another article
    assert evidence_run([Passage("big", "a", 90, 400)], gold) == {"gold0": 1000.0, "gold1": 999.0}


def test_gold_ranks_give_every_span_the_rank_of_the_first_passage_holding_it() -> None:
    gold = [("a", 300, 340), ("a", 100, 200), ("b", 0, 50), ("a", 900, 950)]
    passages = [
        Passage("big", "a", 90, 400),  # holds gold0 and gold1: both retrieved at rank 0
        Passage("x", "b", 40, 90),  # a fifth of gold2: holds nothing
        Passage("big", "a", 90, 400),  # a repeated id takes no new rank
        Passage("y", "b", 0, 30),  # 30 of 50 chars of gold2, at rank 2
    ]
    assert gold_ranks(passages, gold) == [0, 0, 2, None]


def test_retrieval_metrics_on_a_hand_made_run() -> None:
    qrels = {"q1": {"gold0": 1}, "q2": {"gold0": 1, "gold1": 1}}
    runs = {"q1": {"gold0": 1000.0, "p:x": 999.0}, "q2": {"p:y": 1000.0, "gold0": 999.0, "gold1": 998.0}}
    # q2's two spans sit in one passage, ranked second: recall@1 0 for q2, recall@3 1.
    ranks: dict[str, list[int | None]] = {"q1": [0], "q2": [1, 1]}
    # q2: gold first at rank 2 -> RR 0.5; nDCG = (1/log2(3) + 1/log2(4)) / (1 + 1/log2(3))
    ndcg_q2 = (1 / math.log2(3) + 0.5) / (1 + 1 / math.log2(3))
    expected = {"recall@1": 0.5, "recall@3": 1.0, "recall@5": 1.0, "mrr@10": 0.75, "ndcg@10": (1 + ndcg_q2) / 2}
    assert retrieval_metrics(runs, qrels, ranks) == pytest.approx(expected, abs=1e-9)


def test_recall_counts_every_span_one_top_passage_holds() -> None:
    """Two spans in the top passage are both found at rank 1; the ranked run alone would credit one."""
    runs = {"q": {"gold0": 1000.0, "gold1": 999.0}}
    metrics = retrieval_metrics(runs, {"q": {"gold0": 1, "gold1": 1}}, {"q": [0, 0]})
    assert metrics["recall@1"] == 1.0
    assert metrics["mrr@10"] == 1.0


def test_retrieval_metrics_with_no_qrels_are_zero() -> None:
    names = ("recall@1", "recall@3", "recall@5", "mrr@10", "ndcg@10")
    assert retrieval_metrics({}, {}, {}) == dict.fromkeys(names, 0.0)


def test_prf_including_zero_divisions() -> None:
    assert prf(3, 1, 2) == pytest.approx({"precision": 0.75, "recall": 0.6, "f1": 2 / 3}, abs=1e-12)
    assert prf(0, 0, 0) == {"precision": 0.0, "recall": 0.0, "f1": 0.0}
    assert prf(0, 2, 3) == {"precision": 0.0, "recall": 0.0, "f1": 0.0}


def test_percentile_of_empty_single_and_several_values() -> None:
    assert percentile([], 95) == 0.0
    assert percentile([7], 95) == 7.0
    assert percentile([5, 1, 4, 2, 3], 50) == 3.0
    assert percentile([5, 1, 4, 2, 3], 95) == pytest.approx(4.8, abs=1e-12)  # 4 + 0.8 * (5 - 4)
    assert percentile([10, 20], 95) == pytest.approx(19.5, abs=1e-12)


ROWS = [
    {"answerable": True, "fact_coverage": 0.8, "guarded": False, "confidence": 0.6},
    {"answerable": True, "fact_coverage": 0.5, "guarded": False, "confidence": 0.4},
    {"answerable": False, "fact_coverage": 0.0, "guarded": False, "confidence": 0.3},
    {"answerable": False, "fact_coverage": 0.0, "guarded": True, "confidence": 0.9},
]


@pytest.mark.parametrize(("threshold", "objective", "precision", "recall", "f1"), [
    (0.45, 2.8 / 4, 2 / 3, 1.0, 0.8),  # declines an answerable question
    (0.40, 3.3 / 4, 1.0, 1.0, 1.0),  # a confidence equal to the threshold is answered
    (0.20, 2.3 / 4, 1.0, 0.5, 2 / 3),  # answers an unanswerable one; the guarded one still declines
])
def test_score_threshold_objective_and_abstention_prf(
    threshold: float, objective: float, precision: float, recall: float, f1: float
) -> None:
    got_objective, abstain = score_threshold(ROWS, threshold)
    assert got_objective == pytest.approx(objective, abs=1e-12)
    assert abstain == pytest.approx({"precision": precision, "recall": recall, "f1": f1}, abs=1e-12)


def item(split: str) -> Item:
    return Item(f"{split}-1", split, "factual", "What do the glutes do?", (), True, "They extend the hip.",
                (("extend the hip",),), ())


def test_fit_calibration_refuses_questions_outside_the_dev_split() -> None:
    with pytest.raises(ValueError, match="dev split only"):
        fit_calibration(None, [item("dev"), item("test")], {})  # type: ignore[arg-type]


# --- answer hygiene and failure classes ---------------------------------------------------------


@pytest.mark.parametrize(("answer", "sections", "defects"), [
    ("The glutes extend the hip. [1]", ["Glutes"], []),
    ("But what muscles does running work, exactly? [1]", [""], ["question"]),
    ("Warm-up exercises for runners include: [1]", [""], ["empty_lead_in"]),
    ("To do a clamshell: 1. Lay down on your side. 2. Bend your knees. [1]", [""], []),
    ("They contract during the swing phase. [1]", [""], ["dangling_pronoun"]),
    ("- They contract during the swing phase. [1]\n- Squats. [1]", [""], ["dangling_pronoun"]),
    ("Warm-up exercises for runners include:\n- Leg swings. [1]\n- Skips. [1]", [""], []),
    ("Hip Flexors: They contract during the swing phase. [1]", [""], []),
    ("It may be challenging to determine if a weak hip is the source. [1]", [""], []),
    ("Hip muscle loads during running. [1]", ["References"], ["reference_quote"]),
])
def test_hygiene_defects_name_what_an_editor_would_cut(answer: str, sections: list[str], defects: list[str]) -> None:
    assert hygiene_defects(answer, sections) == defects


def _row(**kw: object) -> dict[str, object]:
    base: dict[str, object] = {"answerable": True, "abstained": False, "defects": [], "fact_coverage": 0.5,
                               "run": {"gold0": 1000.0}, "gold_found": 1, "gold_cited": 1}
    return {**base, **kw}


@pytest.mark.parametrize(("row", "failure"), [
    (_row(abstained=True), "false decline"),
    (_row(answerable=False), "missed decline"),
    (_row(answerable=False, abstained=True), None),
    (_row(defects=["dangling_pronoun"]), "missing context"),
    (_row(defects=["question"]), "hygiene"),
    (_row(fact_coverage=1.0), None),
    (_row(run={f"p:{i}": 1000.0 - i for i in range(6)}), "retrieval miss"),
    (_row(gold_cited=0), "wrong unit type"),
    (_row(), "incomplete set"),
])
def test_failure_class_is_the_first_that_applies(row: dict[str, object], failure: str | None) -> None:
    assert failure_class(row) == failure


def test_the_hybrid_baselines_cut_keeps_its_lines_and_counts_words_as_the_eval_does() -> None:
    from evals.baseline import first_words

    chunk = "Leg exercises include:\n\n- Squats (and single leg variations)\n- Lunges\n- Step-ups and wall sits"
    assert first_words(chunk, 9) == "Leg exercises include:\n- Squats (and single leg variations)\n- Lunges"
    assert answer_words(first_words(chunk, 9)) == 9  # the bullets cost no words
    assert first_words(chunk, 5) == "Leg exercises include:\n- Squats (and"
    assert first_words(chunk, 100) == chunk.replace("\n\n", "\n")  # blank lines go, as the answers have none
