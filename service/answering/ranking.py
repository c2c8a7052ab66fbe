"""Ordering retrieved chunks by weights learned from the dev split: the features, and the model. Pure,
apart from reading the weights file.

The hand-set order (fused score plus the best sentence's cosine, ``rerank.SentenceReranker``) is one
signal among several a reader uses to judge a passage: whether its heading names what was asked,
whether it is a list when a set was asked for, whether it opens the article. ``python -m evals.tune
ranking`` fits a logistic regression on the dev split (which candidates hold gold evidence), and the
shipped weights are ``ranking.json`` beside this module, versioned like ``selection.json``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property, lru_cache
from pathlib import Path

import numpy as np

from ingest.models import Chunk
from service.answering.query import Query
from service.answering.retrieval import Hit
from service.answering.selection import lexical_support, logistic, read_fitted
from service.answering.text import stem, stems

SHIPPED_RANKING = Path(__file__).with_name("ranking.json")
RANKING_FEATURES = (
    "dense",  # the chunk's cosine to the question
    "keyword",  # BM25, relative to the best candidate's
    "best_sentence",  # the cosine of its best, second best and best three sentences
    "second_sentence",
    "top3_sentences",
    "base_gap",  # the hand-set score minus the best candidate's
    "base_rank",  # log(1 + rank) in the hand-set order
    "focus_in_heading",  # share of the focus terms in the section trail
    "focus_in_text",
    "question_in_text",  # share of the question's content words in the chunk
    "lexical",  # the question's words and lexicon concepts in the heading and text
    "article_opening",  # the article's first chunk (an introduction)
    "words",  # length / 100
    "kind_list",
    "kind_faq",
    "kind_table",
    "set_list",  # a set was asked for and the chunk is a list or table
    "procedure_steps",  # a procedure was asked for and the chunk is a list or has numbered steps
    "definition_opens",  # a definition was asked for and the focus is named in the chunk's opening
    "focus_in_title",
)
_STEPS = re.compile(r"(?m)^\s*(\d+[.)]|step\b)", re.IGNORECASE)


@dataclass(frozen=True)
class _Static:
    """What a chunk contributes to its features whatever the question."""

    heading: frozenset[str]
    text: frozenset[str]
    both: frozenset[str]
    opening: frozenset[str]  # its first ten words
    title: frozenset[str]
    lowered: str  # heading and text, lower case
    words: int
    has_steps: bool


@lru_cache(maxsize=4096)
def _static(chunk: Chunk) -> _Static:
    # A chunk is a candidate for many questions: stem and measure it once, not per request.
    heading, text = frozenset(stems(" ".join(chunk.section))), frozenset(stems(chunk.text))
    split = chunk.text.split()
    return _Static(heading, text, heading | text, frozenset(stems(" ".join(split[:10]))),
                   frozenset(stems(chunk.title)), f"{' '.join(chunk.section)} {chunk.text}".lower(), len(split),
                   bool(_STEPS.search(chunk.text)))


def ranking_features(query: Query, hits: Sequence[Hit], sentence_sims: Sequence[np.ndarray]) -> np.ndarray:
    """One row per hit, columns as ``RANKING_FEATURES``. ``hits`` are in the hand-set order, with their
    fused and hand-set scores; ``sentence_sims`` are each hit's sentence cosines (any order)."""
    focus = {stem(w) for w in query.focus}
    own = {stem(w) for w in query.content}
    best_keyword = max((h.keyword for h in hits), default=0.0) or 1.0
    top = hits[0].hand_set if hits else 0.0
    rows = []
    for rank, (h, sims) in enumerate(zip(hits, sentence_sims, strict=True)):
        chunk, st = h.chunk, _static(h.chunk)
        top3 = sorted(sims.tolist(), reverse=True)[:3] or [0.0]
        rows.append([
            h.dense,
            h.keyword / best_keyword,
            top3[0],
            top3[1] if len(top3) > 1 else top3[0],
            sum(top3) / len(top3),
            h.hand_set - top,
            math.log1p(rank),
            len(focus & st.heading) / len(focus) if focus else 0.0,
            len(focus & st.text) / len(focus) if focus else 0.0,
            len(own & st.text) / len(own) if own else 0.0,
            lexical_support(query, own, st.lowered, st.both),
            float(chunk.position == 0),
            st.words / 100.0,
            float(chunk.kind == "list"),
            float(chunk.kind == "faq"),
            float(chunk.kind == "table"),
            float(query.answer_type == "set" and chunk.kind in ("list", "table")),
            float(query.answer_type == "procedure" and (chunk.kind == "list" or st.has_steps)),
            float(query.answer_type == "definition" and bool(focus & st.opening)),
            float(bool(focus & st.title)),
        ])
    return np.asarray(rows, dtype=np.float64).reshape(len(hits), len(RANKING_FEATURES))


@dataclass(frozen=True)
class RankingModel:
    """A logistic regression over standardised features: a 0-1 score of how likely a chunk holds the
    answer, fitted class-balanced, so it ranks rather than gives calibrated probabilities."""

    mean: tuple[float, ...]
    scale: tuple[float, ...]
    coef: tuple[float, ...]
    intercept: float
    source: str = "ranking.json"

    @classmethod
    def load(cls, path: Path = SHIPPED_RANKING) -> RankingModel:
        data = read_fitted(path, RANKING_FEATURES, "ranking")
        mean, scale, coef = (tuple(float(v) for v in data[k]) for k in ("mean", "scale", "coef"))
        return cls(mean, scale, coef, float(data["intercept"]), path.name)

    @cached_property
    def _arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        # Made once per model, not per request (a frozen dataclass still takes a cached_property).
        return np.asarray(self.mean), np.asarray(self.scale), np.asarray(self.coef)

    def probability(self, x: np.ndarray) -> np.ndarray:
        mean, scale, coef = self._arrays
        return logistic(((x - mean) / scale) @ coef + self.intercept)
