"""From a decoded source file to a cleaned, structured Article. Pure."""

from __future__ import annotations

import hashlib

from ingest.clean import clean
from ingest.models import Article, SourceDoc
from ingest.planted import find_planted
from ingest.structure import parse_structure


def build_article(doc: SourceDoc) -> Article:
    cleaned = clean(doc.text, doc.title)
    title, sections, blocks = parse_structure(cleaned.text, doc.title)
    sha = hashlib.sha256(f"{title}\n{cleaned.text}".encode()).hexdigest()
    return Article(
        article_id=doc.article_id,
        file=doc.file,
        title=title,
        text=cleaned.text,
        sha=sha,
        sections=sections,
        blocks=blocks,
        publisher=doc.publisher,
        author=doc.author,
        removed=cleaned.removed,
        planted=tuple(find_planted(cleaned.text, doc.text)),
    )
