"""What kind of gap a declined or weakly answered question is, judged from what the answerer found when it
was asked again: the injection guard's verdict, how close retrieval's nearest passage came (its dense
cosine), how much of its focus the articles discuss (``focus_coverage``, as declining weighs it) and the
lexicon concepts it names. The analysis that decides a decline, read from its result; nothing is re-derived.

- ``adjacent``: about running or training, and the articles say little about what it asks: write about it.
- ``partly_covered``: the articles discuss most of what it asks about, but the answer was thin.
- ``off_topic``: not about running or training at all.
- ``abuse``: an injection attempt (the guard refused it) or gibberish.

Only the first two are "what to write next". Pure, apart from ``assess`` reading a ChatResult.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from service.answering.text import REAL_WORD_ZIPF, words

if TYPE_CHECKING:
    from service.answering.engine import ChatResult

GapClass = Literal["adjacent", "partly_covered", "off_topic", "abuse"]
GAP_CLASSES: tuple[GapClass, ...] = ("adjacent", "partly_covered", "off_topic", "abuse")
WRITE_NEXT: frozenset[GapClass] = frozenset({"adjacent", "partly_covered"})
CLASS_LABELS: dict[GapClass, str] = {
    "adjacent": "Adjacent running topic",
    "partly_covered": "Partly covered",
    "off_topic": "Off-topic",
    "abuse": "Abuse",
}

# Below this relatedness, and naming no lexicon concept, a question is not about running or training. Chosen
# on the dev split of evals/data/gaps.jsonl (all-MiniLM-L6-v2): off-topic questions reach 0.20 and, past
# that, 0.27 ("How do I get better at chess?") and 0.32 ("how do you tie a tie"); adjacent running ones go
# down to 0.23 ("couch to 5k how many weeks does it take"). 0.21 and 0.22 score best on dev; 0.21 keeps the
# margin on the side of the gaps worth writing about.
RELATED_MIN = 0.21
# Above this share of its focus discussed in the articles, a question is one they touch ("partly covered").
TOUCHED_MIN = 0.5


@dataclass(frozen=True)
class GapRules:
    """The thresholds, for another embedding model (the tests' hashing embedder scores lower)."""

    related_min: float = RELATED_MIN
    touched_min: float = TOUCHED_MIN


@dataclass(frozen=True)
class Assessment:
    """One question asked again against the current index: what the answerer found."""

    guarded: bool  # the injection guard refused it
    gibberish: bool
    relatedness: float  # cosine of the question to its nearest retrieved passage (with its headings)
    focus_coverage: float
    concepts: tuple[str, ...]
    answered: bool  # answered now, not declined
    confidence: float | None  # None when the guard refused it
    cited: tuple[str, ...]  # article ids the answer cites, each once per citation


def is_gibberish(message: str, known: Callable[[str], bool]) -> bool:
    """No words at all, or fewer than half of them words: "asdfghjkl", "????", "lorem ipsum dolor sit amet".
    ``known`` says whether the articles or the lexicon use a word that English rarely does ("soleus")."""
    from wordfreq import zipf_frequency

    found = words(message)
    if not found:
        return True
    real = sum(1 for w in found if known(w) or zipf_frequency(w, "en") >= REAL_WORD_ZIPF)
    return real * 2 < len(found)


def assess(message: str, result: ChatResult, lexicon_words: Iterable[str] = ()) -> Assessment:
    """The evidence in ``result`` (``engine.chat(message)``). Words count as known when the lexicon, the
    retrieved passages or the spelling repair know them."""
    query = result.provenance.query
    known = set(lexicon_words) | (set(query.corrections) if query else set())
    passage_words: set[str] = set()
    for h in result.hits:
        passage_words.update(words(h.chunk.text))
    known |= passage_words
    return Assessment(
        guarded=result.provenance.decline_reason == "out_of_scope",
        gibberish=is_gibberish(message, known.__contains__),
        relatedness=round(max((h.dense for h in result.hits), default=0.0), 4),
        focus_coverage=query.focus_coverage if query else 0.0,
        concepts=tuple(query.concepts) if query else (),
        answered=not result.abstained,
        confidence=result.provenance.confidence,
        cited=tuple(c.article_id for c in result.citations),
    )


def classify(a: Assessment, rules: GapRules | None = None) -> GapClass:
    rules = rules or GapRules()
    if a.guarded or a.gibberish:
        return "abuse"
    if not a.concepts and a.relatedness < rules.related_min:
        return "off_topic"
    return "partly_covered" if a.focus_coverage > rules.touched_min else "adjacent"


def majority_class(classes: Iterable[tuple[GapClass, int]]) -> GapClass:
    """The class most asks of a cluster have (ties: the order of GAP_CLASSES)."""
    counts: Counter[GapClass] = Counter()
    for cls, n in classes:
        counts[cls] += n
    return max(GAP_CLASSES, key=lambda c: (counts[c], -GAP_CLASSES.index(c)))
