"""Recover structure from plain text: heading hierarchy, paragraphs, lists with their lead-in,
table rows with their header, FAQ question/answer pairs and reference lists. Pure."""

from __future__ import annotations

import re
from dataclasses import dataclass

from ingest.clean import is_title_like
from ingest.models import Block, Section
from ingest.sentences import LIST_MARK

LIST_ITEM = re.compile(rf"^\s*{LIST_MARK}\s+\S")
NUMBERED_HEADING = re.compile(r"^\d{1,2}\.\s+\S")
MD_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*$")
TABLE_ROW = re.compile(r"^\s*\|.*\|\s*$")
TABLE_RULE = re.compile(r"^\s*\|[\s:|-]+\|\s*$")
REFERENCE = re.compile(
    r"^\s*\d{1,3}\.\s+.*(?:\bdoi\b|\bPMID\b|\b(?:19|20)\d{2}\s*;\s*\d|\b10\.\d{4,9}/\S+|\((?:19|20)\d{2}\))",
    re.IGNORECASE,
)
FAQ_HEADING = re.compile(r"^(?:FAQ|FAQs|Frequently Asked Questions)\b", re.IGNORECASE)
CONTAINER_CUE = re.compile(r"(?::$|\b(?:below|following|two|three|four|five|six|seven|several|these)\b)", re.IGNORECASE)
SENTENCE_END = ('.', '!', '?', ':', '"', '”', ')', '’')
REFERENCES_SECTION = "References"


@dataclass(frozen=True)
class Line:
    start: int
    end: int
    text: str

    @property
    def stripped(self) -> str:
        return self.text.strip()

    @property
    def content_end(self) -> int:
        """End offset without trailing whitespace (scraped lines often end in a no-break space)."""
        return self.start + len(self.text.rstrip())


def split_lines(text: str) -> list[Line]:
    lines, pos = [], 0
    for raw in text.split("\n"):
        lines.append(Line(pos, pos + len(raw), raw))
        pos += len(raw) + 1
    return lines


def _classify(lines: list[Line], title: str | None) -> tuple[list[str], str | None]:
    """A kind for each line: blank, title, heading, md_heading, table, list, reference, text."""
    kinds = ["blank" if not ln.stripped else "text" for ln in lines]
    derived_title = None
    first = next((i for i, k in enumerate(kinds) if k != "blank"), None)
    if first is not None:
        head = lines[first].stripped
        md = MD_HEADING.match(head)
        head_text = md.group(2) if md else head
        if (title and head_text == title.strip()) or (not title and len(head_text) <= 150):
            kinds[first] = "title"
            derived_title = head_text
    for i, ln in enumerate(lines):
        if kinds[i] != "text":
            continue
        s = ln.stripped
        nxt = next((j for j in range(i + 1, len(lines)) if kinds[j] != "blank"), None)
        if MD_HEADING.match(s):
            kinds[i] = "md_heading"
        elif TABLE_ROW.match(s):
            kinds[i] = "table"
        elif REFERENCE.match(s):
            kinds[i] = "reference"
        elif NUMBERED_HEADING.match(ln.text) and is_title_like(s, max_words=8) and nxt is not None:
            kinds[i] = "heading"
        elif LIST_ITEM.match(ln.text):
            kinds[i] = "list"
        elif is_title_like(s) and nxt is not None:
            kinds[i] = "heading"
    return kinds, derived_title


def _heading_levels(lines: list[Line], kinds: list[str]) -> dict[int, int]:
    """Line index -> heading level (2 = section, 3 = subsection)."""
    heads = [i for i, k in enumerate(kinds) if k in ("heading", "md_heading")]
    prefixes: dict[str, int] = {}
    for i in heads:
        if ":" in lines[i].stripped:
            p = lines[i].stripped.split(":", 1)[0]
            prefixes[p] = prefixes.get(p, 0) + 1

    def body(i: int) -> list[Line]:
        nxt = next((j for j in heads if j > i), len(lines))
        return [lines[j] for j in range(i + 1, nxt) if kinds[j] != "blank"]

    levels: dict[int, int] = {}
    container: tuple[int, bool] | None = None  # (heading index, children are numbered)
    for i in heads:
        s = lines[i].stripped
        if kinds[i] == "md_heading":
            levels[i] = len(MD_HEADING.match(s).group(1))  # type: ignore[union-attr]
            container = None
            continue
        numbered = bool(NUMBERED_HEADING.match(s))
        prefix = s.split(":", 1)[0] if ":" in s else None
        if FAQ_HEADING.match(s):
            levels[i], container = 2, None
        elif numbered or (prefix and prefixes.get(prefix, 0) >= 2):
            levels[i] = 3
        elif container is not None and not container[1] and len(body(i)) <= 4:
            levels[i] = 3  # a short sub-section under an intro heading ("Are Your Hips Weak?" > its two tests)
        else:
            levels[i], container = 2, None
        if levels[i] == 2:
            b = body(i)
            if not b or (len(b) == 1 and len(b[0].stripped) <= 300 and CONTAINER_CUE.search(b[0].stripped)):
                nxt = next((j for j in heads if j > i), None)
                child_numbered = nxt is not None and bool(NUMBERED_HEADING.match(lines[nxt].stripped))
                container = (i, child_numbered)
        elif container is not None and container[1] and not numbered:
            container = None
    return levels


def parse_structure(text: str, title: str | None) -> tuple[str, tuple[Section, ...], tuple[Block, ...]]:
    """Title, sections and body blocks of a cleaned article. Offsets point into ``text``."""
    lines = split_lines(text)
    kinds, derived_title = _classify(lines, title)
    levels = _heading_levels(lines, kinds)
    final_title = (title or derived_title or "Untitled").strip()

    sections: list[Section] = []
    blocks: list[Block] = []
    trail: list[tuple[int, str]] = []  # (level, heading)
    in_faq = False
    segment = 0
    i, n = 0, len(lines)

    def path() -> tuple[str, ...]:
        return tuple(h for _, h in trail)

    while i < n:
        kind, ln = kinds[i], lines[i]
        if kind == "blank" and i + 1 < n and kinds[i + 1] == "blank":
            nb = next((m for m in range(i, n) if kinds[m] != "blank"), n)
            if nb < n and kinds[nb] not in ("heading", "md_heading"):
                # The scraper dropped a heading here: leave any sub-section, start a new segment.
                segment += 1
                while trail and trail[-1][0] >= 3:
                    trail.pop()
            i = nb
            continue
        if kind in ("blank", "title"):
            i += 1
            continue
        if kind in ("heading", "md_heading"):
            level = levels[i]
            heading = MD_HEADING.match(ln.stripped).group(2) if kind == "md_heading" else ln.stripped  # type: ignore[union-attr]
            if level <= 1:  # a second '# ' heading in markdown: treat as a section
                level = 2
            while trail and trail[-1][0] >= level:
                trail.pop()
            trail.append((level, heading))
            in_faq = bool(FAQ_HEADING.match(heading)) if level == 2 else in_faq
            sections.append(Section(path(), level, ln.start, ln.content_end))
            segment += 1
            i += 1
            continue
        if kind == "reference":
            j = i
            while j < n and kinds[j] in ("reference", "blank"):
                if kinds[j] == "reference":
                    blocks.append(
                        Block("references", lines[j].start, lines[j].content_end, (REFERENCES_SECTION,), segment=-1)
                    )
                j += 1
            if not any(s.path == (REFERENCES_SECTION,) for s in sections):
                sections.append(Section((REFERENCES_SECTION,), 2, lines[i].start, lines[i].start))
            i = j
            continue
        if kind == "table":
            j = i
            while j < n and kinds[j] == "table":
                j += 1
            rows = lines[i:j]
            has_header = len(rows) >= 2 and TABLE_RULE.match(rows[1].text)
            header = rows[0].stripped if has_header else ""
            for row in rows[2:] if has_header else rows:
                blocks.append(Block("table", row.start, row.content_end, path(), prefix=header, segment=segment))
            i = j
            continue
        if in_faq and kind == "text" and ln.stripped.endswith("?") and len(ln.stripped) <= 200:
            # A question and its answer lines (paragraphs or list items) stay together.
            j = i + 1
            while j < n and kinds[j] in ("text", "list", "blank"):
                s = lines[j].stripped
                if kinds[j] == "text" and s.endswith("?") and len(s) <= 200:
                    break
                j += 1
            last = max(k for k in range(i, j) if kinds[k] != "blank")
            blocks.append(Block("faq", ln.start, lines[last].content_end, path(), segment=segment))
            i = j
            continue
        # A paragraph, or a lead-in with the list that follows it.
        j = i + 1
        if kind == "text":
            while j < n and kinds[j] == "text" and not lines[j - 1].stripped.endswith(SENTENCE_END):
                j += 1  # hard-wrapped paragraph
        k = j
        while k < n and kinds[k] == "blank":
            k += 1
        if k < n and kinds[k] == "list" and (kind == "list" or ln.stripped.endswith(":")):
            j = k
            while j < n and kinds[j] in ("list", "blank"):
                nb = next((m for m in range(j, n) if kinds[m] != "blank"), n)
                if nb >= n or kinds[nb] != "list":
                    break
                j = nb + 1
            last = max(m for m in range(i, j) if kinds[m] != "blank")
            blocks.append(Block("list", ln.start, lines[last].content_end, path(), segment=segment))
        elif kind == "list":
            blocks.append(Block("list", ln.start, lines[j - 1].content_end, path(), segment=segment))
        else:
            blocks.append(Block("paragraph", ln.start, lines[j - 1].content_end, path(), segment=segment))
        i = j
    return final_title, tuple(sections), tuple(blocks)
