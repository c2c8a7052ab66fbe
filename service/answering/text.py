"""Tokenising, stemming and spelling repair shared by retrieval, answering and abstention. Pure."""

from __future__ import annotations

import re
from collections.abc import Set as AbstractSet
from functools import lru_cache

WORD = re.compile(r"[a-z0-9]+(?:['’][a-z]+)?")
NUMBER_UNIT = re.compile(r"(\d)([a-z]{1,3})\b")

# Function words and question scaffolding only: words like "down", "off" or "up" stay, because
# questions lean on them ("can't get all the way down").
STOPWORDS = frozenset(
    (
        "a about after again all also am an and any are aren't as at be because been before being both but by "
        "can can't could did didn't do does doesn't doing don't each few for from had has have having he her "
        "here hers herself him himself his how i i'm if in into is isn't it it's its itself just let's me more "
        "most my myself nor now of on once or other ought our ours ourselves own same she should so some such "
        "than that that's the their theirs them themselves then there these they this those to too very was we "
        "were what when where which while who whom why will with would you your yours yourself yourselves tell "
        "explain know really thing things anything something please thanks ok okay hey hi"
    ).split()
)
SORTED_STOPWORDS = tuple(sorted(STOPWORDS))
# Zipf frequency (wordfreq) from which a word is common English, not a typo: "splints" 2.6,
# "creatine" 2.8, but "hamstrng" 0.0, "runing" 2.0, "strenght" 2.2.
REAL_WORD_ZIPF = 2.5


@lru_cache(maxsize=1)
def _stemmer():  # type: ignore[no-untyped-def]
    import Stemmer

    return Stemmer.Stemmer("english")


def normalise(text: str) -> str:
    """Lower case, straight apostrophes, and numbers split from units ("70kg" -> "70 kg")."""
    text = text.lower().replace("’", "'")
    return NUMBER_UNIT.sub(r"\1 \2", text)


def words(text: str) -> list[str]:
    return WORD.findall(normalise(text))


def content_words(text: str) -> list[str]:
    return [w for w in words(text) if w not in STOPWORDS and (len(w) > 1 or w.isdigit())]


def stem(word: str) -> str:
    return str(_stemmer().stemWord(word))


def stems(text: str) -> set[str]:
    return {stem(w) for w in content_words(text)}


@lru_cache(maxsize=4)
def _sorted_words(vocabulary: frozenset[str]) -> tuple[str, ...]:
    # The index's vocabulary is one frozenset for its lifetime: sort it once, not per query.
    return tuple(sorted(vocabulary))


def correct_spelling(tokens: list[str], vocabulary: AbstractSet[str]) -> tuple[list[str], dict[str, str]]:
    """Replace out-of-vocabulary words by a close corpus word ("hamstrng" -> "hamstring").

    Only words of six letters or more are touched, with at most one edit (two from nine letters),
    and never a common English word (wordfreq), so real words the corpus lacks ("shoes", "splints")
    are left alone and still read as off-topic. Candidates are searched in sorted order, so a tie
    resolves the same way in every process (set order depends on the per-process hash seed).
    """
    from rapidfuzz import process
    from rapidfuzz.distance import OSA
    from wordfreq import zipf_frequency

    fixed: list[str] = []
    changes: dict[str, str] = {}
    corpus_words: tuple[str, ...] | None = None
    for tok in tokens:
        if tok in vocabulary or tok.isdigit() or tok in STOPWORDS:
            fixed.append(tok)
            continue
        if len(tok) >= 4:  # "wich" -> "which": a misspelt function word is harmless to repair
            near = process.extractOne(tok, SORTED_STOPWORDS, scorer=OSA.distance, score_cutoff=1)
            if near is not None and len(near[0]) >= 4:
                changes[tok] = near[0]
                fixed.append(near[0])
                continue
        if len(tok) < 6 or zipf_frequency(tok, "en") >= REAL_WORD_ZIPF:
            fixed.append(tok)
            continue
        limit = 1 if len(tok) < 9 else 2  # OSA: a swapped pair of letters is one edit
        if corpus_words is None:
            corpus_words = _sorted_words(vocabulary if isinstance(vocabulary, frozenset) else frozenset(vocabulary))
        best = process.extractOne(tok, corpus_words, scorer=OSA.distance, score_cutoff=limit)
        if best is not None:
            changes[tok] = best[0]
            fixed.append(best[0])
        else:
            fixed.append(tok)
    return fixed, changes
