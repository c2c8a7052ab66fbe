"""Scoring candidate units: the features, and the weights learned from the dev split. Pure, apart from
reading the weights file.

The weights are data, like the abstention calibration: ``python -m evals.tune selection`` fits a
logistic regression on the dev split (which candidates overlap the gold evidence) and writes them to a
path of your choosing; the shipped ones are ``selection.json`` beside this module.
"""

from __future__ import annotations

import json
import re
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from service.answering.query import Query
from service.answering.text import stem, stems
from service.answering.units import ANNOUNCES, PRONOUN_START, Candidate

SHIPPED_SELECTION = Path(__file__).with_name("selection.json")
FEATURES = (
    "cosine",  # the unit's mean sentence vector against the question
    "lexical",  # the question's words and lexicon concepts in the unit (and its heading)
    "focus_in_heading",  # share of the focus terms in the unit's section trail
    "focus_in_text",
    "chunk_gap",  # the chunk's hand-set retrieval score minus that of the first chunk considered
    "chunk_rank",
    # the unit is the kind of thing the question asks for, one feature per answer type
    "procedure_steps",
    "set_list",
    "variation_section",
    "quantity_number",
    "definition_form",
    "reason_form",
    "order_form",
    "yes_no_form",
    "kind_list",
    "kind_steps",
    "kind_item",
    "kind_row",
    "in_variation",  # under a "Challenge Yourself" heading
    "faq_answer",
    "pronoun_unresolved",  # opens with a pronoun and carries no context
    "announces",  # "Here are...", "Below, we...": a lead-in, not content
    "words",  # length / 50
    "first_in_chunk",
    "has_number",
)
_REASON = re.compile(r"\b(because|so that|since|due to|causes?|leads? to|can lead|which means|results? in)\b", re.I)
_ORDER = re.compile(r"\b(before|after|first|then|than|rather|different days|separate|versus|instead)\b", re.I)
_DEFINES = re.compile(r"\b(is|are|refers to|means|—|involves?)\b", re.I)


def lexical_support(query: Query, own_terms: set[str], text: str, text_stems: AbstractSet[str] | None = None) -> float:
    """How much of the question a text speaks to: half its own words, half its lexicon concepts
    (a sentence naming "gluteus maximus" speaks to a question about the "butt"). ``text_stems``:
    ``stems(text)``, when the caller has it already."""
    sent = stems(text) if text_stems is None else text_stems
    own = len(own_terms & sent) / len(own_terms) if own_terms else 0.0
    if not query.concepts:
        return own
    lowered = text.lower()
    hit = sum(1 for c in query.concepts if any(t in lowered for t in c.terms))
    return 0.5 * own + 0.5 * hit / len(query.concepts)


def type_matches(query: Query, c: Candidate) -> list[float]:
    """One value per answer type: 1 when the question asks for that type and the unit is of its form."""
    text, kind = c.text, query.answer_type
    head = " ".join(text.split()[:14])
    focus = {stem(w) for w in query.focus}
    return [
        float(kind == "procedure" and c.kind == "steps"),
        float(kind == "set" and (c.kind in ("list", "row") or text.count(",") >= 2)),
        float(kind == "variation" and c.in_variation),
        float(kind == "quantity" and bool(re.search(r"\d", text))),
        float(kind == "definition" and bool(_DEFINES.search(head)) and bool(focus & stems(" ".join(text.split()[:8])))),
        float(kind == "reason" and bool(_REASON.search(text))),
        float(kind == "comparison" and bool(_ORDER.search(text))),
        float(kind == "yes_no" and text.lower().startswith(("yes", "no"))),
    ]


def features(query: Query, qvec: np.ndarray, cands: list[Candidate], top_score: float) -> np.ndarray:
    """One row per candidate, columns as ``FEATURES``."""
    own = {stem(w) for w in query.content}
    focus = {stem(w) for w in query.focus}
    rows = []
    for c in cands:
        chunk = c.hit.chunk
        heading = " ".join(chunk.section)
        text_stems = c.stems
        cos = float(c.vec @ qvec / (np.linalg.norm(c.vec) or 1.0)) if c.vec is not None else 0.0
        rows.append([
            cos,
            lexical_support(query, own, f"{heading} {c.text}"),
            len(focus & stems(heading)) / len(focus) if focus else 0.0,
            len(focus & text_stems) / len(focus) if focus else 0.0,
            c.hit.hand_set - top_score,
            float(c.rank),
            *type_matches(query, c),
            float(c.kind == "list"),
            float(c.kind == "steps"),
            float(c.kind == "item"),
            float(c.kind == "row"),
            float(c.in_variation),
            float(chunk.kind == "faq"),
            float(not c.label and bool(PRONOUN_START.match(c.parts[0]))),
            float(bool(ANNOUNCES.match(c.parts[0]))),
            c.words / 50.0,
            float(c.first == 0),
            float(bool(re.search(r"\d", c.text))),
        ])
    return np.asarray(rows, dtype=np.float64).reshape(len(cands), len(FEATURES))


@dataclass(frozen=True)
class SelectionModel:
    coef: tuple[float, ...]
    intercept: float
    source: str = "selection.json"

    @classmethod
    def load(cls, path: Path = SHIPPED_SELECTION) -> SelectionModel:
        data = read_fitted(path, FEATURES, "selection")
        return cls(tuple(float(x) for x in data["coef"]), float(data["intercept"]), path.name)

    def probability(self, x: np.ndarray) -> np.ndarray:
        return logistic(x @ np.asarray(self.coef) + self.intercept)


def read_fitted(path: Path, features: tuple[str, ...], what: str) -> dict[str, Any]:
    """A weights file written by ``python -m evals.tune <what>``, refused when fitted on other features."""
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    if tuple(data["features"]) != features:
        raise ValueError(f"{path} was fitted on other features — refit it: python -m evals.tune {what}")
    return data


def logistic(z: np.ndarray) -> np.ndarray:
    p: np.ndarray = 1.0 / (1.0 + np.exp(-z))
    return p
