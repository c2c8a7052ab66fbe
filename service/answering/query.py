"""What a question asks, before retrieval: spelling repaired, lexicon concepts found, follow-ups
resolved against the conversation. Pure."""

from __future__ import annotations

import re
from collections.abc import Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field

from ingest.lexicon import Concept, Lexicon
from service.answering.question import AnswerType, answer_type, focus_phrases, focus_terms, subject_word
from service.answering.text import STOPWORDS, content_words, correct_spelling, words

ANAPHORA = frozenset("it its it's this that these those they them their one ones there same".split())
CONTINUATION = re.compile(r"^\s*(and|also|what about|how about|what if|but|or|then|so)\b", re.IGNORECASE)


@dataclass(frozen=True)
class Turn:
    role: str
    content: str


@dataclass
class Query:
    message: str  # as asked
    text: str  # what is retrieved with: repaired, abbreviations spelled out and, for a follow-up, joined to
    #            the earlier question's subject
    concepts: list[Concept]
    expansions: list[str]  # lexicon terms added for keyword retrieval
    content: list[str]  # content words of ``text``
    coverage: float  # share of the message's content words the corpus knows
    corrections: dict[str, str] = field(default_factory=dict)
    follow_up_of: str | None = None
    answer_type: AnswerType = "other"  # from this message's wording; a follow-up with none takes the earlier one
    focus: list[str] = field(default_factory=list)  # what is asked about (a follow-up adds the earlier subject)
    focus_pairs: list[tuple[str, str]] = field(default_factory=list)  # adjacent focus words, as asked
    # a yes/no or how-much question's subject word, as asked ("creatine" in "does creatine help…")
    subject: str | None = None

    @property
    def keyword_text(self) -> str:
        return " ".join([self.text, *self.expansions])


def is_follow_up(message: str, history: list[Turn]) -> bool:
    """A message that leans on the previous turn: a pronoun with little topic of its own, or an
    "and ...?" continuation, or almost no content words."""
    if not any(t.role == "user" for t in history):
        return False
    toks = words(message)
    content = content_words(message)
    if CONTINUATION.match(message):
        return True
    if len(content) <= 2:
        return True
    return any(t in ANAPHORA for t in toks) and len(content) <= 4


def topic_of(question: str, lexicon: Lexicon, vocabulary: AbstractSet[str]) -> str:
    """What an earlier question was about, to carry into a follow-up: the lexicon terms it used, or
    failing that its content words. The new message keeps the lead; this only supplies the subject."""
    fixed, _ = correct_spelling(words(question), vocabulary)
    text = " ".join(fixed)
    terms = list(dict.fromkeys(t for t, _ in lexicon.find(text)))
    return " ".join(terms) if terms else " ".join(content_words(text))


def _resolved_previous(history: list[Turn], lexicon: Lexicon, vocabulary: AbstractSet[str],
                       abbreviations: Mapping[str, str]) -> str | None:
    """The previous user question as it was understood: a follow-up itself ("How do I do it?" after
    "What does the quadruped hip extension work?") carries the subject it was resolved against, so
    a chain of follow-ups keeps its subject."""
    users = [i for i, t in enumerate(history) if t.role == "user"]
    if not users:
        return None
    last = users[-1]
    return analyse(history[last].content, history[:last], lexicon, vocabulary, abbreviations).text


# Zipf frequency (wordfreq) from which a word typed in lower case is a word, not an abbreviation:
# "tfl" 2.9 and "acl" 3.4 are spelled out as typed, "who" 6.3 and "si" 4.2 only as "WHO" and "SI".
COMMON_WORD_ZIPF = 4.0


def spelled_out(message: str, tokens: list[str], abbreviations: Mapping[str, str]) -> str:
    """The words with each abbreviation the articles define followed by what it stands for: "tfl" ->
    "tfl tensor fasciae latae", so that retrieval meets the articles' own words. An abbreviation that
    is also a common word counts only when ``message`` has it in capitals."""
    if not any(w in abbreviations for w in tokens):
        return " ".join(tokens)  # most questions: no capitals to find, no frequencies to look up
    from wordfreq import zipf_frequency

    capitals = {w.lower() for w in re.findall(r"\b[A-Z][A-Z0-9]{1,7}\b", message)}

    def meant(w: str) -> bool:
        return w in abbreviations and (w in capitals or (
            w not in STOPWORDS and zipf_frequency(w, "en") < COMMON_WORD_ZIPF))

    return " ".join(f"{w} {abbreviations[w]}" if meant(w) else w for w in tokens)


def analyse(message: str, history: list[Turn], lexicon: Lexicon, vocabulary: AbstractSet[str],
            abbreviations: Mapping[str, str] | None = None, follow_up: bool | None = None) -> Query:
    """The retrieval query for ``message``; vocabulary is every word the corpus and lexicon know, and
    ``abbreviations`` those the articles define (``ingest.terms.defined_abbreviations``). ``follow_up``
    says whether the message leans on the conversation; None decides by its wording (``is_follow_up``)."""
    abbreviations = abbreviations or {}
    previous = next((t.content for t in reversed(history) if t.role == "user"), None)
    leans = is_follow_up(message, history) if follow_up is None else follow_up
    follow = previous if previous is not None and leans else None
    understood = _resolved_previous(history, lexicon, vocabulary, abbreviations) if follow else None
    own = words(message)
    fixed, changes = correct_spelling(own, vocabulary)
    repaired = " ".join(fixed)
    topic = topic_of(understood, lexicon, vocabulary) if understood else ""
    asked = spelled_out(message, fixed, abbreviations)
    text = f"{asked} {topic}" if follow else asked
    concepts = lexicon.concepts_in(text)
    found = {t for t, _ in lexicon.find(text)}
    expansions = [t for c in concepts if c.expand for t in c.terms if t not in found]
    own_content = content_words(repaired)
    known = sum(1 for w in own_content if w in vocabulary)
    coverage = known / len(own_content) if own_content else (1.0 if follow else 0.0)
    kind = answer_type(repaired)
    if kind == "other" and understood:
        kind = answer_type(understood)
    focus = focus_terms(repaired)
    pairs = focus_phrases(repaired)
    if follow:
        focus = list(dict.fromkeys(focus + focus_terms(topic)))
    return Query(
        message=message,
        text=text,
        concepts=concepts,
        expansions=expansions,
        content=content_words(text),
        coverage=coverage,
        corrections=changes,
        follow_up_of=follow,
        answer_type=kind,
        focus=focus,
        focus_pairs=pairs,
        subject=subject_word(repaired),
    )
