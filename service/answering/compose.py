"""Compose a short extractive answer from retrieved chunks. Pure.

An answer is a few *units* (``citations.Unit``): one article sentence, a list with its lead-in, or
a table row read with its header, each quoting the exact article span it came from.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ingest.models import Chunk
from ingest.sentences import LIST_MARKER
from service.answering.citations import Unit
from service.answering.query import Query
from service.answering.retrieval import Hit, SearchIndex
from service.answering.text import stem, stems

REFERRAL = ("physical therapist", "orthopedist", "physiotherapist")


@dataclass(frozen=True)
class AnswerParams:
    """Tuned on the dev split (evals)."""

    max_words: int = 85
    max_units: int = 2  # windows per answer
    max_window: int = 3  # sentences per window
    chunks_considered: int = 3
    lexical_weight: float = 1.2
    rank_weight: float = 0.5
    length_penalty: float = 0.05
    margin: float = 0.2  # a second window must score within this of the best one


def _is_question(sentence: str) -> bool:
    return sentence.rstrip().endswith("?")


def _list_run(chunk: Chunk, si: int) -> tuple[int, int] | None:
    """The sentence range (first, last) of the list that sentence ``si`` belongs to, with its
    lead-in (the sentence ending with ':' just before the items), or None if it is not in a list."""
    sents = chunk.sentences
    text = chunk.text

    def is_item(i: int) -> bool:
        return bool(LIST_MARKER.match(text[sents[i][0] : sents[i][1]])) or _line_starts_with_marker(text, sents[i][0])

    if not (is_item(si) or text[sents[si][0] : sents[si][1]].rstrip().endswith(":")):
        return None
    first = si
    while first > 0 and is_item(first):
        first -= 1
    last = si if is_item(si) else si + 1
    if last >= len(sents):
        return None
    while last + 1 < len(sents) and is_item(last + 1):
        last += 1
    return first, last


def _line_starts_with_marker(text: str, pos: int) -> bool:
    line_start = text.rfind("\n", 0, pos) + 1
    return bool(LIST_MARKER.match(text[line_start : pos + 2]))


def _render_list(chunk: Chunk, first: int, last: int, max_words: int) -> tuple[str, int, int]:
    """'Lead-in: item; item; item.' and the chunk-relative span it quotes (trimmed to the budget)."""
    sents = chunk.sentences
    lead = chunk.text[sents[first][0] : sents[first][1]].strip()
    items: list[str] = []
    end = sents[first][1]
    for i in range(first + 1, last + 1):
        item = LIST_MARKER.sub("", chunk.text[sents[i][0] : sents[i][1]]).strip().rstrip(".;")
        if items and len(" ".join([lead, *items, item]).split()) > max_words:
            break
        items.append(item)
        end = sents[i][1]
    if not lead.endswith(":") and LIST_MARKER.match(lead):
        lead_text = ""
        items.insert(0, LIST_MARKER.sub("", lead).rstrip(".;"))
    else:
        lead_text = lead
    body = "; ".join(items)
    text = f"{lead_text} {body}." if lead_text else f"{body}."
    return text.strip(), sents[first][0], end


def _render_row(chunk: Chunk, row: str) -> str:
    cells = [c.strip() for c in row.strip().strip("|").split("|")]
    header = [c.strip() for c in chunk.prefix.strip().strip("|").split("|")] if chunk.prefix else []
    if len(header) == len(cells) and len(cells) > 1:
        rest = "; ".join(f"{h.lower()}: {c}" for h, c in zip(header[1:], cells[1:], strict=True))
        return f"{cells[0]} — {rest}."
    return " — ".join(cells) + "."


def _unit_for(hit: Hit, si: int, score: float, rank: int, max_words: int) -> Unit:
    chunk = hit.chunk
    s, e = chunk.sentences[si]
    sentence = chunk.text[s:e]
    if chunk.kind == "table" and sentence.strip().startswith("|"):
        return Unit(_render_row(chunk, sentence), hit, s, e, score, rank)
    run = _list_run(chunk, si)
    if run is not None:
        text, start, end = _render_list(chunk, run[0], run[1], max_words)
        return Unit(text, hit, start, end, score, rank)
    return Unit(sentence.strip(), hit, s, e, score, rank)


def lexical_support(query: Query, own_terms: set[str], sentence: str) -> float:
    """How much of the question a sentence speaks to: half its own words, half its lexicon concepts
    (a sentence naming "gluteus maximus" speaks to a question about the "butt")."""
    sent = stems(sentence)
    own = len(own_terms & sent) / len(own_terms) if own_terms else 0.0
    if not query.concepts:
        return own
    lowered = sentence.lower()
    hit = sum(1 for c in query.concepts if any(t in lowered for t in c.terms))
    return 0.5 * own + 0.5 * hit / len(query.concepts)


def _near_duplicate(a: Unit, b: Unit) -> bool:
    """Same words, or the same meaning (the articles often restate a fact in their FAQ)."""
    if a.vec is not None and b.vec is not None and float(a.vec @ b.vec) >= 0.85:
        return True
    sa, sb = stems(a.text), stems(b.text)
    return bool(sa and sb) and len(sa & sb) / min(len(sa), len(sb)) >= 0.7


def _paragraph_runs(chunk: Chunk) -> list[list[int]]:
    """Sentence indexes grouped by line: a window never crosses a line break (a new paragraph,
    list item or table row)."""
    runs: list[list[int]] = []
    prev_end = None
    for i, (s, e) in enumerate(chunk.sentences):
        if prev_end is None or "\n" in chunk.text[prev_end:s]:
            runs.append([])
        runs[-1].append(i)
        prev_end = e
    return runs


def _window_units(hit: Hit, first: int, last: int, score: float, rank: int, params: AnswerParams) -> list[Unit]:
    """The units of a sentence window: a list or table row becomes one rendered unit; prose keeps
    each sentence, all quoting the window's span."""
    chunk = hit.chunk
    if first == last:
        return [_unit_for(hit, first, score, rank, params.max_words)]
    tail: list[Unit] = []
    if chunk.text[chunk.sentences[last][0] : chunk.sentences[last][1]].rstrip().endswith(":"):
        # The window ends by introducing a list: the list (with that lead-in) belongs to it.
        tail = [_unit_for(hit, last, score, rank, params.max_words)]
        last -= 1
    s, e = chunk.sentences[first][0], chunk.sentences[last][1]
    return [
        Unit(chunk.text[a:b].strip(), hit, s, e, score, rank)
        for a, b in chunk.sentences[first : last + 1]
    ] + tail


def compose(query: Query, qvec: np.ndarray, hits: list[Hit], index: SearchIndex, params: AnswerParams) -> list[Unit]:
    """The best sentence window (and a second one when it is nearly as good, e.g. from another
    article), in reading order; each unit cites the window it came from."""
    considered = [h for h in hits if not h.chunk.is_reference][: params.chunks_considered]
    if not considered:
        return []
    top_score = considered[0].score
    own_terms = {stem(w) for w in query.content}
    windows: list[tuple[float, Hit, int, int, int]] = []
    for rank, hit in enumerate(considered):
        chunk = hit.chunk
        vecs = [index.sentence_vector(hit.index, i) for i in range(len(chunk.sentences))]
        for run in _paragraph_runs(chunk):
            for a in range(len(run)):
                for b in range(a, min(a + params.max_window, len(run))):
                    first, last = run[a], run[b]
                    text = chunk.text[chunk.sentences[first][0] : chunk.sentences[last][1]]
                    if _is_question(text) or (len(text.split()) < 4 and not LIST_MARKER.match(text)):
                        continue
                    vs = [v for v in vecs[first : last + 1] if v is not None]
                    if not vs:
                        continue
                    mean = np.mean(vs, axis=0)
                    cos = float(mean @ qvec / (np.linalg.norm(mean) or 1.0))
                    words = len(text.split())
                    heading = chunk.section[-1] if chunk.section else ""
                    score = (
                        cos
                        + params.lexical_weight * lexical_support(query, own_terms, f"{heading} {text}")
                        + params.rank_weight * (hit.score - top_score)
                        - params.length_penalty * max(0, words - 30) / 30
                    )
                    windows.append((score, hit, first, last, rank))
    windows.sort(key=lambda w: -w[0])
    chosen: list[Unit] = []
    spans: list[tuple[str, int, int]] = []
    words_used = 0
    for score, hit, first, last, rank in windows:
        if len(spans) >= params.max_units or (spans and score < windows[0][0] - params.margin):
            break
        s, e = hit.chunk.sentences[first][0], hit.chunk.sentences[last][1]
        if any(cid == hit.chunk_id and not (e <= cs or ce <= s) for cid, cs, ce in spans):
            continue
        units = _window_units(hit, first, last, score, rank, params)
        for u in units:
            si = next(
                (
                    i
                    for i, (a, _) in enumerate(hit.chunk.sentences)
                    if a >= u.start and hit.chunk.text[a:].startswith(u.text[:20])
                ),
                first,
            )
            u.vec = index.sentence_vector(hit.index, si)
        if any(_near_duplicate(c, u) for c in chosen for u in units):
            continue
        words = sum(u.words for u in units)
        if spans and words_used + words > params.max_words:
            continue
        chosen.extend(units)
        spans.append((hit.chunk_id, s, e))
        words_used += words
    chosen.sort(key=lambda u: (u.rank, u.start))
    return chosen


def referral_unit(query: Query, qvec: np.ndarray, index: SearchIndex) -> Unit | None:
    """The articles' own advice to see a professional, for questions about pain or injury."""
    if not any(c.id == "injury" for c in query.concepts):
        return None
    best: tuple[float, int, int] | None = None
    for ci, sc in enumerate(index.chunks):
        if sc.chunk.is_reference:
            continue
        sims = index.sentence_sims(ci, qvec)
        for si, (s, e) in enumerate(sc.chunk.sentences):
            refers = any(r in sc.chunk.text[s:e].lower() for r in REFERRAL) and si < len(sims)
            if refers and (best is None or sims[si] > best[0]):
                best = (float(sims[si]), ci, si)
    if best is None:
        return None
    sc = index.chunks[best[1]]
    hit = Hit(best[1], sc.chunk_id, sc.chunk, 0.0, 0.0, 0.0, score=0.0)
    s, e = sc.chunk.sentences[best[2]]
    return Unit(sc.chunk.text[s:e].strip(), hit, s, e, best[0], rank=99)
