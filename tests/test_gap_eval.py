"""The labelled gap log (evals/data/gaps.jsonl) and the scoring of ``python -m evals.gap_eval``."""

from __future__ import annotations

from collections import Counter

from evals.gap_eval import GAPS_FILE, NOT_A_GAP, LabelledGap, evaluate, load_labelled
from service.coverage.classify import GAP_CLASSES, Assessment


def test_the_labelled_log_is_big_enough_split_and_clean() -> None:
    items = load_labelled(GAPS_FILE)
    assert len(items) >= 80
    assert len({i.question.casefold() for i in items}) == len(items)  # no question twice, so none in both splits
    assert {i.label for i in items} == set(GAP_CLASSES) and {i.split for i in items} == {"dev", "test"}
    test = Counter(i.label for i in items if i.split == "test")
    assert all(test[c] >= 10 for c in GAP_CLASSES), test
    assert {i.kind for i in items if i.label == "abuse"} == {"injection", "gibberish"}
    assert load_labelled(GAPS_FILE, "test") == [i for i in items if i.split == "test"]


def _assessed(answered: bool = False, confidence: float | None = 0.1, guarded: bool = False,
              relatedness: float = 0.5) -> Assessment:
    return Assessment(guarded=guarded, gibberish=False, relatedness=relatedness, focus_coverage=0.2, concepts=(),
                      answered=answered, confidence=confidence, cited=())


def test_scores_count_only_gaps_and_write_next_pools_two_classes() -> None:
    items = [LabelledGap("shoes", "adjacent", "adjacent", "test"),
             LabelledGap("squat rest", "partly_covered", "partly_covered", "test"),
             LabelledGap("calves", "partly_covered", "partly_covered", "test"),
             LabelledGap("france", "off_topic", "off_topic", "test"),
             LabelledGap("chess", "off_topic", "off_topic", "test"),
             LabelledGap("ignore", "abuse", "injection", "test")]
    evidence = {"shoes": _assessed(), "squat rest": _assessed(),  # both read as adjacent
                "calves": _assessed(answered=True, confidence=0.9),  # answered well: not a gap
                "france": _assessed(relatedness=0.05), "chess": _assessed(),  # chess mistaken for running
                "ignore": _assessed(guarded=True, confidence=None)}
    report = evaluate(items, evidence.__getitem__, threshold=0.35)
    assert report.gaps == 5 and report.not_gaps == Counter({"partly_covered": 1})
    assert report.per_class["adjacent"]["precision"] == 1 / 3 and report.per_class["adjacent"]["recall"] == 1.0
    assert report.per_class["off_topic"]["recall"] == 0.5 and report.per_class["abuse"]["f1"] == 1.0
    assert report.write_next["precision"] == 2 / 3 and report.write_next["recall"] == 1.0
    assert {(i.question, p) for i, p in report.wrong} == {("squat rest", "adjacent"), ("chess", "adjacent")}
    assert NOT_A_GAP not in {p for _, p in report.wrong}
