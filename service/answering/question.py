"""What kind of answer a question wants, and what it is about. Pure.

The answer type decides which units of an article can answer (a procedure is answered by its steps, a
set by its list); the focus is the thing asked about, which retrieval, selection and declining check
against the articles. Both come from the question's wording alone, never from a list of known questions.
"""

from __future__ import annotations

import itertools
import re
from typing import Literal

from service.answering.text import content_words, normalise, words

AnswerType = Literal[
    "definition", "set", "procedure", "quantity", "yes_no", "comparison", "reason", "variation", "other"
]
ANSWER_TYPES: tuple[AnswerType, ...] = (
    "definition", "set", "procedure", "quantity", "yes_no", "comparison", "reason", "variation", "other"
)

# the words a yes/no question opens with
_AUXILIARIES = frozenset("is are does do did can could should will would was were has have".split())

# What a set question asks for, and the opening of a question that does not ask yes or no.
_SET_THINGS = (r"\b(muscles|exercises|moves|tests|phases|groups|ways|benefits|stretches|variations|movements|"
               r"patterns|injuries|fibres|fibers)\b")
_NOT_YES_NO = r"^(?!(is|are|does|do|can|could|should|will|would)\b)"
# Checked in order: the first rule that matches names the type. Typed chat ("how do i do a bridge",
# "whats a hip hinge") is normalised to lower case with straight apostrophes first.
_RULES: list[tuple[AnswerType, re.Pattern[str]]] = [
    ("variation", re.compile(
        # "harder" asks for a variation when an exercise is to be made so ("how can I make them harder",
        # "make it tougher", "a harder version"), not when hills make running harder, muscles work
        # harder, runs get tougher or two exercises are compared ("which one is harder")
        r"\b((^|how (can|do|should|could|would) (i|you|we) )mak(e|ing)\b(?:(?!\bwork(s|ing|ed)?\b).){0,30}"
        r"\b(harder|tougher)|"
        r"mak(e|es|ing) (it|them|this|that|these|those)( one| ones)? (a bit |a little |even |much )?(harder|tougher)|"
        r"(harder|tougher) (version|variation|option|progression|exercise|move|workout)s?|"
        r"more (challenging|difficult|advanced)|progress(ion)?|variations?|advance it|level up|"
        r"make (it|this|that) (more )?(hard|tough|difficult|challenging)|where (should|do) (i|you) (put|place)|"
        r"band (go|placement))\b")),
    ("procedure", re.compile(
        r"\b(how (do|should|can) (i|you|we) (do|perform|execute)|how to (do|perform)|steps? (for|to)|"
        r"what are the steps|technique for|proper form|how is (a|an|the) .{1,40} (done|performed))\b")),
    ("reason", re.compile(r"(^|\b)(why|what causes|how come|reason)\b")),
    ("comparison", re.compile(
        r"\b(before or after|after or before|which (comes |should come |one )?first|first or|order|"
        r"versus|vs\.?|compared to|more than|less than|better than|or (running|lifting|strength)|"
        r"which (one |ones )?(is |are )?(harder|easier|better|worse|tougher|more effective))\b")),
    ("quantity", re.compile(
        r"\b(how (much|many|often|long|far|heavy|frequently)|how many times|what percentage|"
        r"\d+\s*(kg|kilos?|lbs?|pounds))\b")),
    ("set", re.compile(
        rf"\b(which|what|list|name)\b.{{0,40}}{_SET_THINGS}|"
        # "best" and "good" ask for a set unless the question asks yes or no ("Are bridges any good for my
        # butt muscles?")
        rf"{_NOT_YES_NO}.*\b(best|top|main|key|good)\b.{{0,40}}{_SET_THINGS}|"
        # things to list that a yes/no question also names ("Is it good to do drills before a run?"):
        # a set only when asked which or what they are
        rf"{_NOT_YES_NO}.*\b(which|what|list|name)\b.{{0,40}}"
        r"\b(rules|tips|principles|guidelines|takeaways|signs|factors|drills|options)\b|"
        r"\b(which|what) muscles?\b|\bwhat (does|do) .{1,40} (work|target|strengthen|involve|use)\b")),
    ("definition", re.compile(
        r"^(what|whats|what's) (is|are|does) (an? |the )?[a-z' -]{2,50}\??$|^(what|whats|what's) (an? |the )"
        r"[a-z' -]{2,50}\??$|\b(define|definition of|meaning of|what is meant by|what does .{1,30} mean)\b")),
    ("yes_no", re.compile(r"^(" + "|".join(sorted(_AUXILIARIES)) + r")\b")),
]
# Words that only say what kind of answer is wanted, never what it is about.
_CUE_WORDS = frozenset(
    "best good top main key list name which what kind type types way ways exactly really need needs make "
    "makes made harder tougher challenging difficult advanced progress progression variation variations "
    "steps step perform performed properly proper form technique define definition mean meant meaning "
    "often much many long far first order versus vs compared better reason cause causes happen happens "
    "recommend recommended important importance help helps work works use used should whats "
    # chat fillers that carry no topic
    "actually really just even always ever still also anything something bad okay fine guys "
    # requests for a form of answer ("give me an example", "show me a sample")
    "give show example examples sample version versions".split()
)


_DETERMINERS = frozenset("a an the my your our their his her its some any this that these those".split())
_PRONOUNS = frozenset("i you we they he she it me us them u".split())


# What "how many/much" counts in before naming the thing asked about ("how many hours of sleep").
_MEASURES = frozenset(
    "hours hour minutes minute seconds days day weeks week months times grams gram g kg calories sets reps "
    "servings cups litres liters ml mg amount lot bit".split()
)


def subject_word(message: str) -> str | None:
    """The first word of what a yes/no or "how much/many" question asks about, past its determiners
    (and a quantity's measure): "creatine" in "Does creatine help runners build muscle?", "sleep" in
    "How many hours of sleep do runners need?". None when the question opens otherwise or its subject is
    a pronoun ("Can I lift after a run?") or no noun ("How many should I do?")."""
    toks = words(message)
    if not toks:
        return None
    if toks[0] in _AUXILIARIES:
        rest = toks[1:]
    elif toks[0] == "how" and len(toks) > 1 and toks[1] in ("much", "many"):
        rest = [t for t in toks[2:] if t not in _MEASURES and t != "of"]
    else:
        return None
    content = set(content_words(message))
    for tok in rest:
        if tok in _DETERMINERS:
            continue
        return tok if tok in content and tok not in _PRONOUNS else None
    return None


def answer_type(message: str) -> AnswerType:
    text = normalise(message).strip()
    text = re.sub(r"\s+", " ", text)
    for kind, pattern in _RULES:
        if pattern.search(text):
            return kind
    return "other"


def focus_terms(message: str) -> list[str]:
    """The content words that name what is asked about: the question minus its answer-type cues."""
    return [w for w in content_words(message) if w not in _CUE_WORDS and not w.isdigit()]


def focus_phrases(message: str) -> list[tuple[str, str]]:
    """Pairs of focus words that stand next to each other ("shin splints", "running shoes"): a topic
    is often a phrase whose words the articles use, but never together."""
    focus = set(focus_terms(message))
    toks = words(message)
    return [(a, b) for a, b in itertools.pairwise(toks) if a in focus and b in focus]
