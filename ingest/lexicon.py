"""The domain lexicon (``corpus/lexicon.json``): lay and anatomical names for each topic.

Retrieval expands queries with it; the coverage report uses its concepts as topic rows.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from ingest.errors import CorpusFileInvalid

LEXICON_NAME = "lexicon.json"


@dataclass(frozen=True)
class Concept:
    id: str
    label: str
    kind: str  # muscle_group | exercise | theme
    terms: tuple[str, ...]
    expand: bool = True  # terms are synonyms: a query naming one may be expanded with the others


class Lexicon:
    def __init__(self, concepts: list[Concept]) -> None:
        self.concepts = concepts
        # Longest terms first, so "hip flexors" wins over "hip".
        pairs = sorted(((t.lower(), c) for c in concepts for t in c.terms), key=lambda p: -len(p[0]))
        self._pattern = re.compile(
            r"(?<![\w-])(" + "|".join(re.escape(t) for t, _ in pairs) + r")(?![\w-])", re.IGNORECASE
        ) if pairs else None
        self._by_term: dict[str, list[Concept]] = {}
        for term, concept in pairs:
            self._by_term.setdefault(term, []).append(concept)

    @classmethod
    def load(cls, directory: Path) -> Lexicon:
        """The lexicon in ``directory`` (a corpus dir or an index version); empty if there is none."""
        path = directory / LEXICON_NAME
        if not path.exists():
            return cls([])
        return cls.parse(path.read_text(encoding="utf-8"), str(path))

    @classmethod
    def parse(cls, text: str | None, where: str = LEXICON_NAME) -> Lexicon:
        """A lexicon from its JSON text (None: empty); ``where`` names it in the error."""
        if text is None:
            return cls([])
        try:
            data = json.loads(text)
            return cls(
                [Concept(c["id"], c["label"], c["kind"], tuple(c["terms"]), bool(c.get("expand", True)))
                 for c in data["concepts"]]
            )
        except (json.JSONDecodeError, KeyError, TypeError) as err:
            raise CorpusFileInvalid(f"{where}: not a valid lexicon ({err}) — fix it or remove it") from err

    def find(self, text: str) -> list[tuple[str, Concept]]:
        """(matched term, concept) for each lexicon term in ``text``, in order, without overlaps."""
        if self._pattern is None:
            return []
        out: list[tuple[str, Concept]] = []
        for m in self._pattern.finditer(text):
            for concept in self._by_term[m.group(1).lower()]:
                out.append((m.group(1).lower(), concept))
        return out

    def concepts_in(self, text: str) -> list[Concept]:
        seen: dict[str, Concept] = {}
        for _, c in self.find(text):
            seen.setdefault(c.id, c)
        return list(seen.values())

    def vocabulary(self) -> set[str]:
        return {w for c in self.concepts for t in c.terms for w in re.findall(r"[a-z0-9]+", t.lower())}
