"""Words, stems and the keyword terms of a text: shared by ingest (which writes the keyword index and
the term counts into each version) and the service (which analyses questions the same way). Pure."""

from __future__ import annotations

import itertools
import re
from collections import Counter
from collections.abc import Iterable
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
        "explain know really thing things anything something please thanks ok okay hey hi "
        # the same words as typed in chat, apostrophes and letters dropped ("wen im running")
        "im ive id youre dont doesnt didnt cant isnt arent wen wat whats hows ur"
    ).split()
)
SORTED_STOPWORDS = tuple(sorted(STOPWORDS))


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


def keyword_tokens(text: str) -> list[str]:
    """The BM25 terms of ``text``: stemmed content words."""
    return [stem(w) for w in content_words(text)]


def sentence_mentions(sentences: Iterable[str]) -> Counter[str]:
    """How many of ``sentences`` name each stem and each pair of adjacent stems: declining asks whether a
    question's focus is a topic the articles discuss, not just a word they contain."""
    mentions: Counter[str] = Counter()
    for sentence in sentences:
        toks = keyword_tokens(sentence)
        mentions.update(set(toks) | {f"{a} {b}" for a, b in itertools.pairwise(toks)})
    return mentions


SHORT_FORM = re.compile(r"\(([A-Z][A-Z0-9]{1,7})\)")


def _long_form(short: str, before: str) -> str | None:
    """Schwartz & Hearst's long form of ``short`` in the words just before it: the shortest run of
    those words whose letters spell it in order, the first letter starting a word."""
    candidate = re.findall(r"[\w'-]+", before)[-min(len(short) + 5, 2 * len(short)):]
    text = " ".join(candidate).lower()
    s, t = len(short) - 1, len(text) - 1
    letters = short.lower()
    while s >= 0:
        ch = letters[s]
        while t >= 0 and (text[t] != ch or (s == 0 and t > 0 and text[t - 1].isalnum())):
            t -= 1
        if t < 0:
            return None
        s, t = s - 1, t - 1
    start = text.rfind(" ", 0, t + 1) + 1
    found = text[start:].split()
    # A long form longer than the abbreviation's letters allow is a phrase that merely contains them;
    # one holding the short form itself ("on my own (OWN)") or opening on a function word ("and
    # abductors (AA)") is no definition either.
    if len(found) > len(short) + 1 or short.lower() in found or found[0] in STOPWORDS:
        return None
    return " ".join(found)


def defined_abbreviations(texts: Iterable[str]) -> dict[str, str]:
    """The abbreviations the texts define ("tensor fasciae latae (TFL)" -> {"tfl": "tensor fasciae
    latae"}): a reader's "TFL" means what the articles say it stands for, whatever an encoder knows."""
    found: dict[str, str] = {}
    for text in texts:
        for m in SHORT_FORM.finditer(text):
            long = _long_form(m.group(1), text[max(0, m.start() - 200) : m.start()])
            if long is not None and m.group(1).lower() not in found:
                found[m.group(1).lower()] = long
    return found
