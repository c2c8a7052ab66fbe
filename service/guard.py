"""Recognise requests to step outside Stride's job (prompt injection). Pure.

These are generic instruction-override patterns, not a list of known questions: anything that
asks Stride to drop its rules, change persona, reveal its prompt or answer from outside the
articles is declined.
"""

from __future__ import annotations

import re

INJECTION = [
    re.compile(p, re.IGNORECASE)
    for p in (
        r"\b(ignore|disregard|forget|override|bypass)\b.{0,40}\b(instructions?|rules?|prompts?|guidelines|articles|sources|constraints)\b",
        r"\b(system|developer|hidden|initial)\s+(prompt|message|instructions?)\b",
        r"\byou are (now|no longer)\b",
        r"\b(pretend|act|roleplay|role-play)\b.{0,20}\b(to be|as|you are)\b",
        r"\bfrom your (own )?(general )?(knowledge|training)\b",
        r"\b(jailbreak|dan mode|developer mode)\b",
        r"\b(reveal|print|show|repeat|output)\b.{0,30}\b(prompt|instructions|configuration|api key|secret)\b",
    )
]


def is_injection(message: str) -> bool:
    return any(p.search(message) for p in INJECTION)
