"""Composing an answer from candidate units (pure), on the real articles through the fast-tier index."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from service.answering.compose import AnswerParams, gather, select
from service.answering.query import Query
from service.answering.question import AnswerType
from service.answering.retrieval import Hit, SearchIndex

MUSCLES = "what-muscles-does-running-work"


@pytest.fixture
def index(fake_index) -> SearchIndex:
    from service.answering.engine import open_search_index

    return open_search_index(fake_index, fake_index.embedding_model)


def hits_of(index: SearchIndex, article_id: str, section: str) -> list[Hit]:
    return [Hit(i, sc.chunk_id, sc.chunk, 0.0, 0.0, 0.0) for i, sc in enumerate(index.chunks)
            if sc.chunk.article_id == article_id and sc.chunk.section[-1:] == (section,)]


def asking(kind: AnswerType) -> Query:
    return Query("q", "q", [], [], [], 1.0, answer_type=kind)


def test_an_faq_verdict_answers_only_a_yes_no_question(index: SearchIndex) -> None:
    hits = hits_of(index, MUSCLES, "FAQ: What Muscles Does Running Work?")

    def openings(kind: AnswerType) -> set[str]:
        cands, _ = gather(asking(kind), hits, index, AnswerParams())
        return {c.parts[0] for c in cands}

    assert "Running works both." in openings("yes_no")
    assert "Running works both." not in openings("set")
    # The content after the verdict still answers a question of another kind.
    assert any(p.startswith("Long, steady runs build endurance") for p in openings("set"))


def test_the_most_likely_unit_opens_the_answer_and_its_passage_stays_together(index: SearchIndex) -> None:
    hip = hits_of(index, MUSCLES, "1. Hip Flexors")
    glutes = hits_of(index, MUSCLES, "2. Glutes")
    cands, _ = gather(asking("other"), hip + glutes, index, AnswerParams())
    singles = [c for c in cands if c.kind == "prose" and c.first == c.last]
    in_hip = next(c for c in singles if c.hit.chunk_id == hip[0].chunk_id)
    late, early = sorted((c for c in singles if c.hit.chunk_id == glutes[0].chunk_id), key=lambda c: -c.start)[:2]
    assert late.start > early.start and early.end <= late.start  # two sentences of the glutes passage, apart

    params = replace(AnswerParams(), keep_ratio=0.1, redundancy=1.01, max_words=500)
    chosen = select(asking("other"), [in_hip, late, early], np.array([0.8, 0.9, 0.7]), params)
    # The glutes passage ranked second in retrieval, but its unit is the likeliest: it opens, in the
    # article's order with its other unit, and the hip flexors unit follows.
    assert [id(c) for c in chosen] == [id(early), id(late), id(in_hip)]
