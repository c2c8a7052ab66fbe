"""Tokenising, stemming and spelling repair shared by retrieval, answering and abstention. Pure."""

from __future__ import annotations

from collections.abc import Set as AbstractSet
from functools import lru_cache

from ingest.terms import (  # the one tokeniser, shared with ingest's keyword index
    NUMBER_UNIT,
    SORTED_STOPWORDS,
    STOPWORDS,
    WORD,
    content_words,
    keyword_tokens,
    normalise,
    stem,
    stems,
    words,
)

__all__ = [
    "NUMBER_UNIT", "REAL_WORD_ZIPF", "SORTED_STOPWORDS", "STOPWORDS", "WORD", "content_words", "correct_spelling",
    "keyword_tokens", "normalise", "stem", "stems", "words",
]

# Zipf frequency (wordfreq) from which a word is common English, not a typo: "splints" 2.6,
# "creatine" 2.8, but "hamstrng" 0.0, "runing" 2.0, "strenght" 2.2.
REAL_WORD_ZIPF = 2.5


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
