"""Abstention: confidence, calibration loading and the decline text."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ingest.models import Chunk
from service.answering.abstain import (
    DECLINE,
    SHIPPED_CALIBRATION,
    Calibration,
    confidence,
    decline_text,
    subject_unnamed,
)
from service.answering.query import Query
from service.answering.retrieval import Hit


def hit(cos: float = 0.0, section: tuple[str, ...] = (), title: str = "Article") -> Hit:
    chunk = Chunk("a1", "sha", title, section, 0, 0, 4, "text", "paragraph")
    return Hit(0, "c", chunk, dense=0.0, keyword=0.0, fused=0.0, best_sentence_cos=cos)


def query(coverage: float) -> Query:
    return Query("q", "q", [], [], ["q"], coverage)


def test_confidence_is_the_best_sentence_cosine_among_the_top_three_hits() -> None:
    hits = [hit(0.4), hit(0.7), hit(0.5), hit(0.9)]  # the fourth hit is not looked at
    assert confidence(query(1.0), hits, Calibration(coverage_weight=0.3)) == pytest.approx(0.7, abs=1e-12)


def test_confidence_is_lowered_by_unknown_query_words() -> None:
    assert confidence(query(0.5), [hit(0.7)], Calibration(coverage_weight=0.3)) == pytest.approx(0.55, abs=1e-12)


def test_confidence_is_lowered_by_a_subject_the_articles_never_name() -> None:
    cal = Calibration(coverage_weight=0.0, subject_weight=0.4)
    assert confidence(query(1.0), [hit(0.7)], cal, unnamed_subject=True) == pytest.approx(0.3, abs=1e-12)
    assert confidence(query(1.0), [hit(0.7)], cal, unnamed_subject=False) == pytest.approx(0.7, abs=1e-12)


def test_subject_unnamed_asks_the_articles_sentences_and_the_lay_names_they_discuss() -> None:
    creatine = Query("q", "q", [], [], ["creatine"], 1.0, subject="creatine")
    assert subject_unnamed(creatine, {"muscl": 5}, set())
    assert not subject_unnamed(creatine, {"creatin": 1}, set())  # one mention is a name the articles use
    assert not subject_unnamed(Query("q", "q", [], [], [], 1.0), {}, set())  # no subject, nothing to decline


def test_confidence_without_hits_is_zero() -> None:
    assert confidence(query(0.0), [], Calibration(coverage_weight=0.3)) == 0.0


def test_calibration_loads_fitted_values_and_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "cal.json"
    path.write_text(json.dumps({"threshold": 0.5, "coverage_weight": 0.15, "fitted_on": "dev (10 questions)"}))
    assert Calibration.load(path) == Calibration(0.5, 0.15, "cal.json (dev (10 questions))")


def test_calibration_defaults_when_the_file_is_missing(tmp_path: Path) -> None:
    assert Calibration.load(tmp_path / "absent.json") == Calibration(0.45, 0.3, "default")


def test_calibration_override_replaces_only_the_threshold(tmp_path: Path) -> None:
    path = tmp_path / "cal.json"
    path.write_text(json.dumps({"threshold": 0.5, "coverage_weight": 0.15, "focus_weight": 0.3,
                                "subject_weight": 0.4}))
    assert Calibration.load(path) == Calibration(0.5, 0.15, "cal.json (?)", 0.3, 0.4)
    assert Calibration.load(path, override=0.6) == Calibration(0.6, 0.15, "STRIDE_ABSTAIN_THRESHOLD", 0.3, 0.4)


def test_shipped_calibration_loads_and_its_source_names_the_file() -> None:
    data = json.loads(SHIPPED_CALIBRATION.read_text(encoding="utf-8"))
    cal = Calibration.load()
    assert (cal.threshold, cal.coverage_weight) == (float(data["threshold"]), float(data["coverage_weight"]))
    assert cal.source == f"calibration.json ({data['fitted_on']})"


def test_decline_text_names_up_to_three_distinct_closest_topics() -> None:
    hits = [hit(section=("Glutes", "Hip strength")), hit(section=("Hip strength",)), hit(title="Running form"),
            hit(section=("Core",)), hit(section=("Calves",))]
    expected = f"{DECLINE} Closest topics the articles do cover: “Hip strength”, “Running form”, “Core”."
    assert decline_text(hits) == expected


def test_decline_text_without_hits_is_the_plain_decline() -> None:
    assert decline_text([]) == DECLINE
