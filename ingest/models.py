"""Plain data passed between the ingest stages."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from ingest.planted import Planted

BlockKind = Literal["paragraph", "list", "table", "faq", "references"]


@dataclass(frozen=True)
class SourceDoc:
    """One corpus file, decoded, with what the manifest (or derivation) says about it."""

    article_id: str
    file: str
    text: str  # the main text: the file as is, or what the HTML extractor kept
    title: str | None = None  # from the manifest; None means derive it from the text
    publisher: str | None = None
    author: str | None = None


@dataclass(frozen=True)
class Removal:
    rule: str
    text: str


@dataclass(frozen=True)
class Block:
    """A run of body text that must not be split apart (a paragraph, a list with its lead-in, a table row...)."""

    kind: BlockKind
    start: int
    end: int
    section: tuple[str, ...]
    prefix: str = ""  # context a reader needs that is not inside the span (table header row, list lead-in)
    segment: int = 0  # increments at every heading or dropped-heading break; chunks never cross one


@dataclass(frozen=True)
class Section:
    path: tuple[str, ...]
    level: int
    heading_start: int
    heading_end: int


@dataclass(frozen=True)
class Article:
    """A cleaned article: all offsets in chunks and citations point into ``text``."""

    article_id: str
    file: str
    title: str
    text: str
    sha: str
    sections: tuple[Section, ...]
    blocks: tuple[Block, ...]
    publisher: str | None = None
    author: str | None = None
    removed: tuple[Removal, ...] = ()
    planted: tuple[Planted, ...] = ()  # instruction-like sentences: reported, never answered from


@dataclass(frozen=True)
class Chunk:
    article_id: str
    article_sha: str
    title: str
    section: tuple[str, ...]
    position: int
    start: int
    end: int
    text: str  # verbatim ``article.text[start:end]``
    kind: BlockKind
    prefix: str = ""
    sentences: tuple[tuple[int, int], ...] = field(default=())  # offsets relative to ``start``

    @property
    def section_label(self) -> str:
        return " > ".join(self.section)

    @property
    def is_reference(self) -> bool:
        return self.kind == "references"

    def embedding_text(self) -> str:
        """What is embedded and keyword-indexed: a contextual header (the section trail and any
        table header or list lead-in), then the verbatim text. The article title is left out: it
        is the same for every chunk of an article and would pull all of them towards its topic."""
        parts = [self.section_label, self.prefix, self.text]
        return "\n".join(p for p in parts if p)
