"""Find instruction-like text planted in an article: sentences aimed at an AI assistant ("ignore previous
instructions"), telling the assistant what to tell users, pushing a purchase, or sending readers to a URL.
Such a sentence is reported at ingest and never becomes an answer or reaches an LLM prompt. Pure.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ingest.sentences import sentence_spans

RULES: dict[str, re.Pattern[str]] = {
    "override": re.compile(
        r"\b(ignore|disregard|forget|override)\b.{0,40}\b(previous|prior|above|earlier|all|any|your|the)\b.{0,25}"
        r"\b(instructions?|prompts?|rules|directions|guidelines)\b",
        re.IGNORECASE,
    ),
    "addressed_to_ai": re.compile(
        r"\b(ai|a\.i\.|assistants?|chat ?bots?|language models?|llms?|gpt|chatgpt|answer engines?)\b.{0,60}"
        r"\b(must|should|shall|always|never|tell|say|recommend|respond|answer|reply)\b"
        r"|\b(if|when) you are an? (ai|assistant|language model|chat ?bot)\b",
        re.IGNORECASE,
    ),
    "tells_users": re.compile(r"\btell (the )?(users?|readers?|people|runners|everyone)\b.{0,40}\b(to|that)\b",
                              re.IGNORECASE),
    "purchase": re.compile(
        r"\b(buy|purchase|order|use (the )?(code|coupon))\b.{0,50}\b(now|today|at|from|discount|off)\b",
        re.IGNORECASE,
    ),
    "url": re.compile(r"\bhttps?://\S+|\bwww\.[a-z0-9-]+\.[a-z]{2,}", re.IGNORECASE),
}


@dataclass(frozen=True)
class Planted:
    start: int  # offsets of the sentence in the cleaned article text
    end: int
    line: int  # 1-based line of the sentence in the source file (0 when it cannot be located there)
    rule: str
    text: str


def find_planted(text: str, source: str) -> list[Planted]:
    """Each sentence of the cleaned ``text`` that a rule matches, with its line in ``source`` (the file)."""
    found: list[Planted] = []
    pos = 0
    for line in text.split("\n"):
        start, pos = pos, pos + len(line) + 1
        # Sentence splitting is slow; only a line some rule matches is worth splitting.
        if not any(pattern.search(line) for pattern in RULES.values()):
            continue
        for s, e in sentence_spans(text, start, start + len(line)):
            sentence = text[s:e]
            rule = next((name for name, pattern in RULES.items() if pattern.search(sentence)), None)
            if rule is None:
                continue
            at = source.find(sentence)
            found.append(Planted(s, e, source.count("\n", 0, at) + 1 if at >= 0 else 0, rule, sentence.strip()))
    return found
