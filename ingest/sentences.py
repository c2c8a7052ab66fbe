"""Sentence boundaries as character offsets, so answers can cite single sentences."""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

# One definition of a list marker ("-", "•", "*", "1.", "2)") for every stage that needs one.
LIST_MARK = r"(?:[-•*]|\d{1,2}[.)])"
LIST_MARKER = re.compile(rf"^\s*{LIST_MARK}\s+")  # a line that starts with a marker
LIST_MARKER_ONLY = re.compile(rf"^{LIST_MARK}$")  # a marker that pysbd split off as a sentence
GLUED = re.compile(r"(?<=[a-z)]\.)(?=[A-Z][a-z]+\s)")


@lru_cache(maxsize=1)
def _segmenter() -> Any:
    import pysbd

    return pysbd.Segmenter(language="en", clean=False)


def sentence_spans(text: str, start: int = 0, end: int | None = None) -> list[tuple[int, int]]:
    """``(start, end)`` offsets into ``text`` of each sentence in ``text[start:end]``.

    Lines are split first (a list item or table row is a sentence of its own even without a full
    stop), then pysbd splits each line; spans are located by search so they are exact.
    """
    end = len(text) if end is None else end
    spans: list[tuple[int, int]] = []
    pos = start
    for line in text[start:end].split("\n"):
        line_start = pos
        pos += len(line) + 1
        if not line.strip():
            continue
        cursor = line_start
        # A full stop with the next sentence glued on ("…endurance in the region.Another technique is…"):
        # the scraper lost the space, pysbd keeps it one sentence.
        pieces = [q.strip() for p in _segmenter().segment(line) for q in GLUED.split(p) if q.strip()]
        # pysbd reads a list number ("1.") as a sentence of its own; it belongs to the item.
        merged: list[str] = []
        for piece in pieces:
            if merged and LIST_MARKER_ONLY.match(merged[-1]):
                merged[-1] = line[line.find(merged[-1]) : line.find(piece, line.find(merged[-1])) + len(piece)]
            else:
                merged.append(piece)
        for sent in merged:
            found = text.find(sent, cursor, line_start + len(line))
            if found < 0:  # pysbd altered the text; fall back to the rest of the line
                found = cursor
                sent = text[cursor : line_start + len(line)].strip()
                if not sent:
                    break
                found = text.find(sent, cursor)
            spans.append((found, found + len(sent)))
            cursor = found + len(sent)
    return spans
