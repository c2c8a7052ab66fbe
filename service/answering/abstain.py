"""When to decline, and what to say: the calibrated confidence rule and the decline text. The guard against
requests to step outside Stride's job (prompt injection) is ``guard``. Pure, apart from reading a calibration file.

The threshold and the coverage, focus and subject weights are fitted on the dev split (``stride eval --split dev
--calibrate``), which writes them to a path of your choosing; the calibration the service ships
with is ``calibration.json`` beside this module, replaced only by a deliberate commit.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from service.answering.query import Query
from service.answering.retrieval import Hit
from service.answering.text import stem

SHIPPED_CALIBRATION = Path(__file__).with_name("calibration.json")

DECLINE = "The articles don't cover that, so I can't answer it from them."
OUT_OF_SCOPE = (
    "I can only answer questions about running muscles and strength training for runners, "
    "from Stride's articles."
)


@dataclass(frozen=True)
class Calibration:
    threshold: float = 0.45
    coverage_weight: float = 0.3  # lowers confidence for question words the corpus never uses
    source: str = "default"
    focus_weight: float = 0.0  # lowers it for a focus the articles mention in passing at most
    subject_weight: float = 0.0  # lowers it for a yes/no question whose subject the articles never name

    @classmethod
    def load(cls, path: Path = SHIPPED_CALIBRATION, override: float | None = None) -> Calibration:
        """The fitted values in ``path`` (defaults when it does not exist); ``override`` replaces the threshold."""
        cal = cls()
        if path.exists():
            data = json.loads(path.read_text(encoding="utf-8"))
            cal = cls(float(data["threshold"]), float(data["coverage_weight"]),
                      f"{path.name} ({data.get('fitted_on', '?')})", float(data.get("focus_weight", 0.0)),
                      float(data.get("subject_weight", 0.0)))
        if override is not None:
            cal = replace(cal, threshold=override, source="STRIDE_ABSTAIN_THRESHOLD")
        return cal


def confidence(query: Query, hits: list[Hit], calibration: Calibration, focus_covered: float = 1.0,
               unnamed_subject: bool = False) -> float:
    """How well the best evidence matches: the best sentence's cosine among the top chunks, lowered
    when the question's words are unknown to the corpus, when what it asks about is a topic the
    articles never discuss (``focus_covered``, from ``focus_coverage``), and when a yes/no question's
    subject is something they never name (``unnamed_subject``, from ``subject_unnamed``)."""
    if not hits:
        return 0.0
    best = max(h.best_sentence_cos for h in hits[:3])
    return (best - calibration.coverage_weight * (1.0 - query.coverage)
            - calibration.focus_weight * (1.0 - focus_covered)
            - calibration.subject_weight * unnamed_subject)


def focus_coverage(query: Query, mentions: Mapping[str, int], discussed: set[str], min_mentions: int = 2) -> float:
    """How much of what the question asks about the articles discuss: the mean of the share of its focus
    words named in at least ``min_mentions`` answerable sentences (reference lists and a passing mention
    don't count) or lay names of a lexicon concept the articles discuss ("butt" for the glutes), and the
    share of its two-word focus phrases the articles use together ("shin splints": never)."""
    if not query.focus:
        return 1.0

    def named(word: str) -> bool:
        return mentions.get(stem(word), 0) >= min_mentions

    def lay(word: str) -> bool:
        return not named(word) and _lay_name(query, word, discussed)

    words = sum(named(w) or lay(w) for w in query.focus) / len(query.focus)
    if not query.focus_pairs:
        return words
    phrases = sum(
        mentions.get(f"{stem(a)} {stem(b)}", 0) >= 1 or (lay(a) and named(b)) or (lay(b) and named(a))
        for a, b in query.focus_pairs
    )
    return (words + phrases / len(query.focus_pairs)) / 2


def _lay_name(query: Query, word: str, discussed: set[str]) -> bool:
    """A name the articles don't use for a concept they discuss ("butt" for the glutes)."""
    return any(c.id in discussed and any(word in t.split() for t in c.terms) for c in query.concepts)


def subject_unnamed(query: Query, mentions: Mapping[str, int], discussed: set[str]) -> bool:
    """The yes/no or how-much question is about something no answerable sentence of the articles names, not
    even by a lay name: "does creatine help runners build muscle?", "how many hours of sleep do runners
    need?". What the articles say about the rest (runners building muscle, recovery) is not an answer to it."""
    word = query.subject
    return word is not None and not mentions.get(stem(word), 0) and not _lay_name(query, word, discussed)


def closest_topics(hits: list[Hit], n: int = 3) -> list[str]:
    """Up to ``n`` distinct topics the articles do cover, closest first: each hit's innermost heading."""
    topics: list[str] = []
    for h in hits[:5]:
        label = h.chunk.section[-1] if h.chunk.section else h.chunk.title
        if label not in topics:
            topics.append(label)
    return topics[:n]


def decline_text(hits: list[Hit], topics: list[str] | None = None) -> str:
    """The plain decline, naming up to three of the closest topics the articles do cover (``topics``, when
    the caller has them already: ``closest_topics(hits)``)."""
    topics = closest_topics(hits) if topics is None else topics
    if not topics:
        return DECLINE
    return f"{DECLINE} Closest topics the articles do cover: " + ", ".join(f"“{t}”" for t in topics) + "."
