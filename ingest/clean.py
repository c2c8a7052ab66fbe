"""Remove the web boilerplate scraped articles carry, and nothing else.

Cleaning only deletes whole lines or trailing sentences (plus one repair: a heading glued to the end of
the previous sentence is put back on its own line), so every sentence of the cleaned text is still
verbatim in the source file. Each removal is recorded with the rule that made it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ingest.models import Removal

SMALL_WORDS = frozenset(
    (
        "a an and as at but by for from in into is of on or the to vs vs. with your you do does can"
    ).split()
)


def is_title_like(line: str, max_words: int = 12) -> bool:
    """A bare short line in Title Case without sentence punctuation: the shape of a heading."""
    line = line.strip()
    if not line or len(line) > 90 or line[-1] in ".,;:!" or line.startswith(("- ", "• ", "|", "* ")):
        return False
    words = re.findall(r"[\w’'&+-]+", line)
    if not words or len(words) > max_words:
        return False
    significant = [w for w in words if w.lower() not in SMALL_WORDS]
    if not significant:
        return False
    capped = sum(1 for w in significant if w[0].isupper() or w[0].isdigit())
    return capped / len(significant) >= 0.75


# Whole lines that are always boilerplate, by rule name.
LINE_RULES: dict[str, tuple[re.Pattern[str], ...]] = {
    "newsletter": (
        re.compile(r"^sign up for .*newsletter.*$", re.IGNORECASE),
        re.compile(r"^subscribe to .*newsletter.*$", re.IGNORECASE),
        re.compile(r"^\* indicates required$", re.IGNORECASE),
    ),
    "share_and_reply": (
        re.compile(r"^share this (post|article|page)$", re.IGNORECASE),
        re.compile(r"^leave a (reply|comment)$", re.IGNORECASE),
        re.compile(r"^your email address will not be published\.?\s*required fields are marked \*$", re.IGNORECASE),
    ),
    "read_more_link": (
        re.compile(r"^read (the full article|this article)\b.*$", re.IGNORECASE),
        re.compile(r"^related: .+$", re.IGNORECASE),
    ),
    "editorial_note": (re.compile(r"^.*\buses only high-quality sources\b.*\beditorial process\b.*$", re.IGNORECASE),),
    "image_credit": (re.compile(r"^[A-Z][\w'’.-]+(?: [A-Z][\w'’.-]+){1,3} / [A-Z][\w ]{2,40}$"),),
}
# A sign-up pitch tacked onto the end of a content paragraph.
NEWSLETTER_TAIL = re.compile(r"\s*(?:Want more help\?\s*)?Sign up for (?:my|our) [^.]*newsletter\b.*$", re.IGNORECASE)
RACE_ADS = re.compile(r"^find your next (running )?race$", re.IGNORECASE)
SITE_PROMO = re.compile(r"^\S+['’]s (?:running )?training (?:plans|programmes?|programs?)\b", re.IGNORECASE)
BYLINE = re.compile(r"^By ([A-Z][\w'’.-]+(?: [A-Z][\w'’.-]+)+)(?:, [A-Za-z.]+)*$")
CATEGORY_LABEL = re.compile(r"^[A-Z][a-z]+(?: (?:&|and) [A-Z][a-z]+)?$")
GLUED_HEADING = re.compile(r"^(.*[a-z0-9)][.!?])([A-Z][^.!?;:]{3,80})$")


@dataclass(frozen=True)
class CleanResult:
    text: str
    removed: tuple[Removal, ...]


def _split_glued_headings(lines: list[str]) -> list[str]:
    out: list[str] = []
    for line in lines:
        m = GLUED_HEADING.match(line)
        if m and len(m.group(1)) > 40 and is_title_like(m.group(2), max_words=10):
            out.extend([m.group(1), m.group(2)])
        else:
            out.append(line)
    return out


def _next_nonblank(lines: list[str], i: int) -> int | None:
    while i < len(lines):
        if lines[i].strip():
            return i
        i += 1
    return None


def _prev_nonblank(lines: list[str], i: int) -> int | None:
    while i >= 0:
        if lines[i].strip():
            return i
        i -= 1
    return None


def _mark_block_rules(lines: list[str], title: str | None) -> dict[int, str]:
    """Line index -> rule, for boilerplate that spans several lines or depends on its neighbours."""
    marks: dict[int, str] = {}
    first = _next_nonblank(lines, 0)
    if first is not None and (title is None or lines[first].strip() == title.strip()):
        second = _next_nonblank(lines, first + 1)
        if second is not None and CATEGORY_LABEL.match(lines[second].strip()):
            marks[second] = "category_label"
    for i, raw in enumerate(lines):
        line = raw.strip()
        if RACE_ADS.match(line):
            j = i
            while j < len(lines) and lines[j].strip() and len(lines[j]) <= 160:
                marks[j] = "race_ads"
                j += 1
        elif SITE_PROMO.match(line):
            marks[i] = "site_promo"
            prev = _prev_nonblank(lines, i - 1)
            if prev is not None and is_title_like(lines[prev]):
                marks[prev] = "site_promo"
        elif m := BYLINE.match(line):
            name = m.group(1)
            marks[i] = "author_bio"
            prev = _prev_nonblank(lines, i - 1)
            if prev is not None and lines[prev].strip() in name:
                marks[prev] = "author_bio"
            nxt = _next_nonblank(lines, i + 1)
            if nxt is not None and lines[nxt].strip().startswith(name.split()[-1] + " "):
                marks[nxt] = "author_bio"
    return marks


def _close_gaps(lines: list[str | None]) -> list[str]:
    """Drop removed lines so the blank lines around them count once, not twice (max, not sum)."""
    out: list[str] = []
    i = 0
    while i < len(lines):
        if lines[i] is not None:
            out.append(lines[i])  # type: ignore[arg-type]
            i += 1
            continue
        before = 0
        while out and out[-1] == "":
            out.pop()
            before += 1
        after = 0
        while i < len(lines) and (lines[i] is None or lines[i] == ""):
            after = 0 if lines[i] is None else after + 1
            i += 1
        out.extend([""] * max(before, after))
    return out


def clean(text: str, title: str | None = None) -> CleanResult:
    """Cleaned article text and what was removed; pure."""
    # Lines keep their trailing characters (a quote spanning lines stays verbatim in the source);
    # only whitespace-only lines are emptied, so blank runs can be measured.
    lines = _split_glued_headings(["" if not ln.strip() else ln for ln in text.split("\n")])
    marks = _mark_block_rules(lines, title)
    removed: list[Removal] = []
    kept: list[str | None] = []  # None stands where a line was removed
    for i, line in enumerate(lines):
        stripped = line.strip()
        rule = marks.get(i) or next(
            (name for name, pats in LINE_RULES.items() if any(p.match(stripped) for p in pats)), None
        )
        if rule:
            removed.append(Removal(rule, stripped))
            kept.append(None)
            continue
        if tail := NEWSLETTER_TAIL.search(line):
            removed.append(Removal("newsletter", tail.group(0).strip()))
            line = line[: tail.start()]
        kept.append(line)
    joined = "\n".join(_close_gaps(kept))
    # Two blank lines are kept: that is where the scraper dropped a heading, and structure uses it.
    cleaned = re.sub(r"\n{4,}", "\n\n\n", joined).strip("\n")
    if re.search(r"\n{4,}", joined):
        removed.append(Removal("blank_lines", "runs of blank lines"))
    return CleanResult(cleaned + "\n", tuple(removed))
