"""Citations: the one ``Citation`` type (the domain's and the API's), rendering answer units as text
with ``[n]`` markers, and verifying generated sentences against the passages they cite. Pure.

A unit's citation quotes the exact article span it came from, so a quote is always verbatim. A
generated sentence survives only if it cites a passage, most of its content words appear in that
passage, and every number it states appears there too.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from service.answering.retrieval import Hit
from service.answering.text import stems


class Citation(BaseModel):
    """The passage behind one ``[n]`` marker; ``start``/``end`` index the cleaned article text."""

    model_config = ConfigDict(frozen=True)

    n: int = Field(description="The marker number in the answer, [n].")
    chunk_id: str
    article_id: str
    title: str
    section: str
    quote: str = Field(description="Verbatim article text: article.text[start:end].")
    start: int
    end: int


# How a unit sits in the answer: running text ("prose"), the first sentence of a list item ("item", shown
# after "- ") or of a numbered step ("step", which shows its own number), or a further sentence on the
# line of the item or step before it ("more").
Layout = Literal["prose", "item", "step", "more"]
LIST_LAYOUTS = ("item", "step", "more")


@dataclass
class Unit:
    """One piece of an answer: a sentence, a list item or step (the first with its lead-in), or a table row
    read with its header."""

    text: str  # as shown in the answer, without the layout's line breaks and bullets
    hit: Hit
    start: int  # chunk-relative span of the quote
    end: int
    score: float
    rank: int
    vec: np.ndarray | None = None
    layout: Layout = "prose"
    head: str = ""  # the start of ``text`` that stays on the line before the list: its lead-in (and label)

    @property
    def words(self) -> int:
        return len(self.text.split())


@dataclass(frozen=True)
class Rendered:
    text: str
    citations: list[Citation]


class Renderer:
    """Renders units one at a time, as a stream sends them: each unit followed by its marker; units quoting
    the same span share one citation. ``render`` is this, all at once, so both give the same answer.

    A list reads as a list: its lead-in ends a line, each item opens one ("- " before an item; a step shows
    its own number), and running text after a list starts a new paragraph. Plain text, so the widget, a
    terminal and a Markdown chat client all show it as lines."""

    def __init__(self) -> None:
        self.citations: list[Citation] = []
        self.parts: list[str] = []  # what each unit added, its separator included
        self._by_span: dict[tuple[str, int, int], int] = {}
        self._last: Layout | None = None
        self._last_key: tuple[str, int, int] | None = None

    def add(self, u: Unit) -> tuple[str, Citation | None]:
        """The text this unit adds to the answer, and its citation when it is a new one."""
        c = u.hit.chunk
        key = (u.hit.chunk_id, u.start, u.end)
        new: Citation | None = None
        if key not in self._by_span:
            self._by_span[key] = len(self.citations) + 1
            new = Citation(
                n=self._by_span[key],
                chunk_id=u.hit.chunk_id,
                article_id=c.article_id,
                title=c.title,
                section=c.section_label,
                quote=c.text[u.start : u.end],
                start=c.start + u.start,
                end=c.start + u.end,
            )
            self.citations.append(new)
        text = self._laid_out(u, same_span=key == self._last_key) + f" [{self._by_span[key]}]"
        self.parts.append(text)
        self._last, self._last_key = u.layout, key
        return text, new

    def _laid_out(self, u: Unit, same_span: bool) -> str:
        """The unit's text with what goes before it: a space, a line break (the next item of the same
        list) or a paragraph break."""
        same_list = self._last in LIST_LAYOUTS and same_span
        if u.layout == "more":
            return " " + u.text
        if u.layout == "prose":
            return u.text if self._last is None else ("\n\n" if self._last in LIST_LAYOUTS else " ") + u.text
        bullet = "- " if u.layout == "item" else ""
        if u.head and u.text.startswith(u.head):  # the lead-in ends its line; the list starts under it
            line = f"{u.head}\n{bullet}{u.text[len(u.head):].lstrip()}"
            return line if self._last is None else "\n\n" + line
        if self._last is None:
            return bullet + u.text
        return ("\n" if same_list else "\n\n") + bullet + u.text

    def rendered(self) -> Rendered:
        return Rendered("".join(self.parts), list(self.citations))


def render(units: list[Unit]) -> Rendered:
    """Each unit followed by its marker; units quoting the same span share one citation."""
    renderer = Renderer()
    for u in units:
        renderer.add(u)
    return renderer.rendered()


# --- verifying generated text -----------------------------------------------------------------

MARKER = re.compile(r"\[(\d+)\]")
NUMBER = re.compile(r"\d+(?:[.,]\d+)?")
LIST_NUMBER_AT_END = re.compile(r"(^|[:\s])\d{1,2}[.)]$")


@dataclass(frozen=True)
class Supported:
    text: str  # the sentence without its markers
    passage: int  # 1-based passage number it cites
    start: int  # chunk-relative span of the supporting quote
    end: int


def split_sentences(text: str) -> list[str]:
    import pysbd

    pieces = [p.strip() for p in pysbd.Segmenter(language="en", clean=False).segment(text) if p.strip()]
    joined: list[str] = []
    for p in pieces:
        # pysbd ends a sentence at a lead-in's colon and at a step number ("To do a squat:" | "1." |
        # "Stand ..."): both belong to what follows them.
        if joined and (joined[-1].endswith(":") or LIST_NUMBER_AT_END.search(joined[-1])):
            joined[-1] += " " + p
        else:
            joined.append(p)
    out: list[str] = []
    for p in joined:
        # pysbd can leave a marker at the start of the next piece; it belongs to the previous one.
        lead = re.match(r"^((?:\[\d+\]\s*)+)(.*)$", p)
        if lead and out:
            out[-1] += " " + lead.group(1).strip()
            p = lead.group(2).strip()
        if p:
            out.append(p)
    return out


def support(sentence: str, passage: str) -> float:
    """Share of the sentence's content stems found in the passage (0 if a number is not there)."""
    nums = NUMBER.findall(sentence)
    if any(n not in passage for n in nums):
        return 0.0
    s = stems(sentence)
    return len(s & stems(passage)) / len(s) if s else 0.0


def best_quote(sentence: str, passage: str, spans: list[tuple[int, int]]) -> tuple[int, int]:
    """The one or two consecutive passage sentences that share most with ``sentence``."""
    target = stems(sentence)
    best, best_score = (spans[0] if spans else (0, len(passage))), -1.0
    for i in range(len(spans)):
        for j in (i, i + 1):
            if j >= len(spans):
                continue
            s, e = spans[i][0], spans[j][1]
            got = stems(passage[s:e])
            score = len(target & got) / (len(target) or 1) - 0.01 * (j - i)
            if score > best_score:
                best, best_score = (s, e), score
    return best


def verify(
    generated: str, passages: list[tuple[str, list[tuple[int, int]]]], threshold: float = 0.6
) -> list[Supported]:
    """Keep the generated sentences that their cited passage supports. ``passages``: (text, sentence spans)."""
    return [k for sentence in split_sentences(generated) if (k := check(sentence, passages, threshold))]


def check(sentence: str, passages: list[tuple[str, list[tuple[int, int]]]], threshold: float = 0.6
          ) -> Supported | None:
    """One generated sentence, kept if the passage it cites (the best of several) supports it."""
    cited = [int(n) for n in MARKER.findall(sentence) if 1 <= int(n) <= len(passages)]
    plain = MARKER.sub("", sentence).strip()
    if not cited or not plain:
        return None
    n = max(cited, key=lambda k: support(plain, passages[k - 1][0]))
    text, spans = passages[n - 1]
    if support(plain, text) < threshold:
        return None
    s, e = best_quote(plain, text, spans)
    return Supported(plain, n, s, e)


_ONLY_MARKERS = re.compile(r"^\s*(?:\[\d*\]?\s*)*$")


def complete_sentences(text: str) -> tuple[list[str], str]:
    """The sentences of streamed ``text`` that are finished, and the rest (kept for more tokens). A sentence
    is finished once the next one has begun with a word: until then its ``[n]`` may still be arriving."""
    sentences = split_sentences(text)
    if len(sentences) < 2 or _ONLY_MARKERS.match(sentences[-1]):
        return [], text
    last = text.rfind(sentences[-1])
    return sentences[:-1], text[last:] if last >= 0 else sentences[-1]


def verify_stream(tokens: Iterable[str], passages: list[tuple[str, list[tuple[int, int]]]],
                  threshold: float = 0.6, stop: Callable[[str], bool] = lambda _: False) -> Iterator[Supported]:
    """``verify`` as the text is generated: each sentence is checked once it is finished and yielded at once
    if supported, so the first arrives long before the last token. ``stop(text_so_far)`` ends it early."""
    buffer = ""
    for token in tokens:
        buffer += token
        if stop(buffer):
            return
        done, buffer = complete_sentences(buffer)
        for sentence in done:
            if (kept := check(sentence, passages, threshold)) is not None:
                yield kept
    for sentence in split_sentences(buffer):
        if (kept := check(sentence, passages, threshold)) is not None:
            yield kept
