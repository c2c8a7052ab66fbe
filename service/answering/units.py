"""Candidate answer units from a chunk's structure. Pure.

A candidate is something a careful editor could quote whole: a window of one to three sentences of
one paragraph, a list with its lead-in, numbered steps, a single list item, or a table row read with
its header. Rhetorical questions and lead-ins whose content is missing never become candidates, and a
unit that opens with a pronoun carries its context: the sentence before it, or its heading's label.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cached_property
from typing import Literal

import numpy as np

from ingest.models import Chunk
from ingest.sentences import LIST_MARKER
from service.answering.citations import Layout
from service.answering.retrieval import Hit, SearchIndex
from service.answering.text import stems

UnitKind = Literal["prose", "list", "steps", "item", "row"]
PRONOUN_START = re.compile(
    r"^(?!it(['’]s|\s+(is|was|may be|might be|can be|will be|would be))\s+\w+\s+(to|that|if|whether)\b)"
    r"(they|it|its|their|them|these|those|this|he|she|his|her)\b",
    re.IGNORECASE,
)  # a pronoun that needs a referent; an expletive "It may be hard to..." does not
ANNOUNCES = re.compile(
    r"^(here (are|is)|here's|below\b|the following|in this article|this article|read (this|the)|let's|we('ll| will)|"
    r"(learn|discover|find out) (what|how|why|which|about)\b|"
    # the author's own set-up: "As a passionate runner, I have always been curious about...", "I am
    # excited to share the insights I have gained"
    r"([^.?!]{0,80}, )?i( have|'ve| had)?( always| often)? (been curious|wondered|wonder)\b|"
    r"([^.?!]{0,80}, )?i( am|'m) (excited|happy|thrilled|going|here) to (share|explain|tell|discuss|show)\b)",
    re.IGNORECASE,
)  # a lead-in, an article's teaser or its author's set-up: it announces content and says none
POINTS_ELSEWHERE = re.compile(
    r"^(?:[^.?!:]{0,60}:\s*)?(?:[^.?!]{0,120},\s*)?(?:(?:see|read|check out)\s+)?our\s[\w\s'-]{0,40}?\bguides?\b"
    r"(?:\s+(?:on|to)\s[^.?!,]{0,60}?)?(?:\s+(?:covers?|explains?|shows?|walks you through)\b|\s+for\b|[.!]?$)",
    re.IGNORECASE,
)  # "Our hill running guide covers specific hill workout types...", "See our easy run guide.": what
#    another guide says, not what this article says
YES_NO_OPENING = re.compile(r"^(yes|no)\b", re.IGNORECASE)  # the answer to an FAQ's own question
LEANS_ON_QUESTION = re.compile(r"\b(both|either|neither)\b(?=\s*(?:[,.;:!]|$|\s+(?:but|and|or|so)\b))",
                               re.IGNORECASE)  # "Running activates both, but…": both of what the question named
REFERS_BACK = re.compile(
    r"\b(?:(?:this|these|those|such) (?!is\b|was\b|are\b|were\b|article\b|guide\b)[a-z]+"
    r"|the same|all these|the above)\b|^(?:from there|after that|afterwards?|then|next|another)\b",
    re.IGNORECASE,
)  # "found this muscle to be...", "include all these movements", "From there, see if...": the referent
#    (or the step before) is in an earlier sentence; "Another technique is to…" is the second of something
CONTINUES = re.compile(
    r"(however|additionally|in addition|also|furthermore|moreover|as a result|therefore|thus|so,|"
    r"in other words|because of (this|that)|otherwise|instead|"
    r"(this|that) (means|is why|is because|can|could|may|might|leads?|results?|causes?|helps?|makes?)\b|"
    r"that['’]s why)\b",
    re.IGNORECASE,
)  # "This means that...", "However, ...": the sentence draws the point of the one before it (used with
#    ``match``: at its start)
ENUMERATES = re.compile(
    r"\b(several|a few|a number of|various|multiple|two|three|four|five|six)\s+(?:[a-z-]+\s+){0,2}?"
    r"(benefits|ways|reasons|things|factors|advantages|effects|changes|roles|functions|jobs|tests|signs)\b",
    re.IGNORECASE,
)  # "Regular running can lead to several benefits for the hamstrings.": the paragraph goes on to name them
NUMBERED = re.compile(r"^\s*\d{1,2}[.)]\s+")
HEADING_NUMBER = re.compile(r"^\d{1,2}\.\s+")
VARIATION_HEADING = re.compile(r"^challenge yourself\b", re.IGNORECASE)


@dataclass
class Candidate:
    hit: Hit
    rank: int  # the chunk's place among the considered hits
    kind: UnitKind
    first: int  # sentence range in the chunk, inclusive
    last: int
    start: int  # chunk-relative span the citation quotes
    end: int
    parts: list[str]  # what the answer shows: one entry per sentence (prose) or one rendered whole
    label: str = ""  # heading label shown before a unit whose subject lives in its heading
    vec: np.ndarray | None = None  # mean of its sentence vectors
    sentence_vecs: list[np.ndarray] = field(default_factory=list)
    completes: Candidate | None = None  # the scored unit this one extends (``extended``): its likelihood is this one's
    # per part, how the answer lays it out: "item" or "step" opens a line of a list, "more" goes on the
    # line before it; none for prose (``Layout``)
    layout: list[Layout] = field(default_factory=list)

    @property
    def text(self) -> str:
        return " ".join(self.parts)

    @cached_property
    def stems(self) -> set[str]:
        """Content-word stems of the shown text (features and redundancy both need them)."""
        return stems(self.text)

    @property
    def words(self) -> int:
        return len(self.text.split()) + len(self.label.split())

    @property
    def opens_with_verdict(self) -> bool:
        """It opens with the article's verdict on its own question: "Yes — ..." or, right after an FAQ's
        question, a bare "Running works both." or a sentence that leans on the question's words ("Running
        activates both, but many runners underuse their glutes." after "Is running enough to strengthen your
        glutes and core?"). Only a yes/no question of the reader's is answered so."""
        if YES_NO_OPENING.match(self.parts[0]):
            return True
        return bool(self._question_before) and (len(self.parts[0].split()) <= 4
                                                or bool(LEANS_ON_QUESTION.search(self.parts[0])))

    @property
    def own_question(self) -> str:
        """The article's question this unit follows, when it answers one: the sentence before it, or a
        heading that asks ("" when neither does)."""
        chunk = self.hit.chunk
        if self._question_before:
            return self._question_before
        if chunk.section and chunk.section[-1].rstrip().endswith("?"):
            return chunk.section[-1].strip()
        return ""

    @property
    def _question_before(self) -> str:
        before = _sentence(self.hit.chunk, self.first - 1) if self.first > 0 else ""
        return before if before.endswith("?") else ""

    @property
    def is_list(self) -> bool:
        """A whole list or procedure (not one item of it)."""
        return self.kind in ("list", "steps")

    @property
    def opens_paragraph(self) -> bool:
        return _starts_line(self.hit.chunk, self.first)

    @cached_property
    def lead_in(self) -> str:
        """A list's lead-in ("Here's a quick overview of the primary muscle groups involved:"); "" when
        the unit is no list or its list has none."""
        if not self.is_list:
            return ""
        first = _sentence(self.hit.chunk, self.first)
        is_lead_in = _is_lead_in(first) and not _is_item(self.hit.chunk, [self.first])  # "1. Prepare as follows:"
        return first if is_lead_in else ""

    @property
    def in_variation(self) -> bool:
        return bool(self.hit.chunk.section) and bool(VARIATION_HEADING.match(self.hit.chunk.section[-1]))

    @property
    def variation_heading(self) -> set[str]:
        """The stems of what a "Challenge Yourself" heading names ("Bridge Variation"); empty elsewhere."""
        return stems(VARIATION_HEADING.sub("", self.hit.chunk.section[-1])) if self.in_variation else set()


def heading_label(chunk: Chunk) -> str:
    """The innermost heading, without its list number ("1. Hip Flexors" -> "Hip Flexors"); none when
    the heading is itself a question, which names no subject."""
    if not chunk.section or chunk.section[-1].rstrip().endswith("?"):
        return ""
    return HEADING_NUMBER.sub("", chunk.section[-1]).strip()


def _sentence(chunk: Chunk, i: int) -> str:
    s, e = chunk.sentences[i]
    return chunk.text[s:e].strip()


def _starts_line(chunk: Chunk, i: int) -> bool:
    """Whether sentence ``i`` opens a line of the chunk: a paragraph, a list item or a table row."""
    return i == 0 or "\n" in chunk.text[chunk.sentences[i - 1][1] : chunk.sentences[i][0]]


def _lines(chunk: Chunk) -> list[list[int]]:
    """Sentence indexes grouped by line: a paragraph, a list item or a table row."""
    runs: list[list[int]] = []
    for i in range(len(chunk.sentences)):
        if _starts_line(chunk, i):
            runs.append([])
        runs[-1].append(i)
    return runs


def _is_item(chunk: Chunk, line: list[int]) -> bool:
    line_start = chunk.text.rfind("\n", 0, chunk.sentences[line[0]][0]) + 1
    return bool(LIST_MARKER.match(chunk.text[line_start:]))


def _points_elsewhere(text: str) -> bool:
    return bool(POINTS_ELSEWHERE.search(text))


def _is_lead_in(text: str) -> bool:
    return text.rstrip().endswith(":")


def _barred(text: str) -> bool:
    """A sentence no unit quotes: the article's own question, a teaser or lead-in that announces and says
    nothing, or a pointer to another guide."""
    return text.endswith("?") or bool(ANNOUNCES.match(text)) or _points_elsewhere(text)


def _closed(text: str) -> str:
    """A list item shown as a sentence ends like one ("Lunges" -> "Lunges.")."""
    return text if text.rstrip()[-1:] in ".!:" else text.rstrip(" ;") + "."


def _row_text(chunk: Chunk, row: str) -> str:
    cells = [c.strip() for c in row.strip().strip("|").split("|")]
    header = [c.strip() for c in chunk.prefix.strip().strip("|").split("|")] if chunk.prefix else []
    if len(header) == len(cells) and len(cells) > 1:
        rest = "; ".join(f"{h.lower()}: {c}" for h, c in zip(header[1:], cells[1:], strict=True))
        return f"{cells[0]} — {rest}."
    return " — ".join(cells) + "."


def _list_candidates(hit: Hit, rank: int, lines: list[list[int]], budget: int) -> list[Candidate]:
    """Each run of item lines, with the lead-in line before it; numbered items are steps."""
    chunk = hit.chunk
    out: list[Candidate] = []
    i = 0
    while i < len(lines):
        if not _is_item(chunk, lines[i]):
            i += 1
            continue
        j = i
        while j + 1 < len(lines) and _is_item(chunk, lines[j + 1]):
            j += 1
        lead = lines[i - 1] if i > 0 and not _is_item(chunk, lines[i - 1]) else None
        lead_text = _sentence(chunk, lead[-1]) if lead is not None else ""
        if not _is_lead_in(lead_text) or _points_elsewhere(lead_text):
            lead_text = ""
        items = lines[i : j + 1]
        # an item pointing to another guide says nothing here, in the list or alone
        pointing = [any(_points_elsewhere(LIST_MARKER.sub("", _sentence(chunk, k))) for k in it) for it in items]
        numbered = all(NUMBERED.match(chunk.text[chunk.sentences[it[0]][0] :]) for it in items)
        parts: list[str] = []  # one per sentence, so every item is followed by its citation
        layout: list[Layout] = []
        used = len(lead_text.split())
        last = items[0][-1]
        for it, points in zip(items, pointing, strict=True):
            if points:
                continue
            sentences = [_sentence(chunk, k) for k in it]
            if not numbered:
                sentences[0] = LIST_MARKER.sub("", sentences[0])
            words = sum(len(x.split()) for x in sentences)
            if parts and used + words > budget:
                break
            parts += [_closed(x) for x in sentences]
            opens: Layout = "step" if numbered else "item"
            layout += [opens] + ["more"] * (len(sentences) - 1)
            used += words
            last = it[-1]
        if not parts:  # every item pointed elsewhere
            i = j + 1
            continue
        first = lead[-1] if lead_text and lead is not None else items[0][0]
        if lead_text:
            parts[0] = f"{lead_text} {parts[0]}"
        # a list of things with no lead-in is named by its heading ("Trail Running"), which the answer
        # shows; steps say what they are for in their first step
        out.append(Candidate(hit, rank, "steps" if numbered else "list", first, last,
                             chunk.sentences[first][0], chunk.sentences[last][1], parts, layout=layout,
                             label="" if lead_text or numbered else heading_label(chunk)))
        for it, points in zip(items, pointing, strict=True):
            if numbered or points:  # a step out of its procedure answers nothing
                continue
            item = LIST_MARKER.sub("", " ".join(_sentence(chunk, k) for k in it)).strip()
            # A descriptive item can be the whole answer ("Calves (...) store and release energy for
            # push-off."); a bare name from a list of exercises cannot.
            if len(item.split()) >= 8:
                out.append(Candidate(hit, rank, "item", it[0], it[-1], chunk.sentences[it[0]][0],
                                     chunk.sentences[it[-1]][1], [_closed(item)]))
        i = j + 1
    return out


def _prose_candidates(hit: Hit, rank: int, lines: list[list[int]], max_window: int) -> list[Candidate]:
    chunk = hit.chunk
    out: list[Candidate] = []
    label = heading_label(chunk)
    for line in lines:
        if _is_item(chunk, line):
            continue
        texts = [_sentence(chunk, k) for k in line]  # a line's sentences are consecutive
        # what rules a sentence out of every window holding it, decided once per sentence
        barred = [_barred(t) for t in texts]
        for a in range(len(line)):
            for b in range(a, min(a + max_window, len(line))):
                first, last = line[a], line[b]
                sentences = texts[a : b + 1]
                if any(barred[a : b + 1]):
                    # the article's own (rhetorical) question is never an answer; announcing what
                    # follows, or what another guide covers, says nothing (the window after it may)
                    continue
                if _is_lead_in(sentences[-1]):
                    continue  # a lead-in belongs to its list (see _list_candidates), or to nothing
                if len(" ".join(sentences).split()) < 4:
                    continue
                shown = label if a == 0 and PRONOUN_START.match(sentences[0]) else ""
                if a > 0 and (PRONOUN_START.match(sentences[0]) or REFERS_BACK.search(sentences[0])):
                    continue  # the window that starts one sentence earlier carries the antecedent
                out.append(Candidate(hit, rank, "prose", first, last, chunk.sentences[first][0],
                                     chunk.sentences[last][1], sentences, label=shown))
    return out


def continues(sentence: str) -> bool:
    """Whether a sentence goes on with the one before it rather than starting a point of its own."""
    return bool(CONTINUES.match(sentence))


def extended(c: Candidate, index: SearchIndex) -> Candidate | None:
    """A prose unit with the sentence after it in its paragraph, when that sentence continues it ("This
    means that while running can improve hamstring strength, it may not...") or the paragraph opened by
    announcing several things (``ENUMERATES``): a careful editor does not cut an argument before its
    point, nor a set before its last member. None when there is no such sentence."""
    chunk = c.hit.chunk
    if c.kind != "prose" or c.last + 1 >= len(chunk.sentences):
        return None
    if _starts_line(chunk, c.last + 1):
        return None  # another paragraph, item or row
    s, e = chunk.sentences[c.last + 1]
    text = chunk.text[s:e].strip()
    # a paragraph that opens by announcing several things names them all before it makes another point
    enumerating = _starts_line(chunk, c.first) and bool(ENUMERATES.search(c.parts[0]))
    if not (continues(text) or enumerating) or _barred(text) or _is_lead_in(text) or index.is_planted(chunk, s, e):
        return None
    vec = index.sentence_vector(c.hit.index, c.last + 1)
    vecs = [*c.sentence_vecs, vec] if vec is not None else list(c.sentence_vecs)
    return Candidate(c.hit, c.rank, "prose", c.first, c.last + 1, c.start, e, [*c.parts, text], label=c.label,
                     vec=np.mean(vecs, axis=0) if vecs else None, sentence_vecs=vecs,
                     completes=c.completes if c.completes is not None else c)


def candidates(hits: list[Hit], index: SearchIndex, max_window: int, list_budget: int) -> list[Candidate]:
    """Every candidate unit of ``hits`` (in rank order), each with its mean sentence vector."""
    out: list[Candidate] = []
    for rank, hit in enumerate(hits):
        chunk = hit.chunk
        lines = _lines(chunk)
        if chunk.kind == "table":
            for line in lines:
                row = _sentence(chunk, line[0])
                if row.startswith("|"):
                    s, e = chunk.sentences[line[0]]
                    out.append(Candidate(hit, rank, "row", line[0], line[0], s, e, [_row_text(chunk, row)]))
            continue
        out += _list_candidates(hit, rank, lines, list_budget)
        out += _prose_candidates(hit, rank, lines, max_window)
    out = [c for c in out if not index.is_planted(c.hit.chunk, c.start, c.end)]
    for c in out:
        vecs = [v for i in range(c.first, c.last + 1) if (v := index.sentence_vector(c.hit.index, i)) is not None]
        c.vec = np.mean(vecs, axis=0) if vecs else None
        c.sentence_vecs = vecs
    return out
