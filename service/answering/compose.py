"""Compose a short extractive answer from retrieved chunks. Pure.

Candidates come from the articles' structure (``units``): sentence windows, lists with their lead-in,
numbered steps, single items, table rows. Each is scored by the learned ``SelectionModel``; the best
is taken, then others at least ``keep_ratio`` as likely that repeat nothing already chosen (no
overlapping span, no near-duplicate sentence) and fit the word budget of the question's answer type.
Every unit quotes the exact article span it shows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from service.answering.citations import Unit
from service.answering.query import Query
from service.answering.retrieval import Hit, SearchIndex
from service.answering.selection import SelectionModel, features
from service.answering.units import Candidate, candidates

REFERRAL = ("physical therapist", "orthopedist", "physiotherapist")


@dataclass(frozen=True)
class AnswerParams:
    """Tuned on the dev split (``python -m evals.tune answering``)."""

    max_words: int = 100  # budget of most answers
    set_words: int = 110  # a set is answered by the set
    steps_words: int = 150  # a procedure by all its steps
    max_units: int = 4
    max_window: int = 3  # sentences per prose window
    chunks_considered: int = 4
    keep_ratio: float = 0.7  # a further unit must be this likely relative to the best
    min_probability: float = 0.1
    redundancy: float = 0.85  # cosine above which a unit repeats one already chosen


def budget(query: Query, params: AnswerParams) -> int:
    if query.answer_type == "set":
        return params.set_words
    if query.answer_type == "procedure":
        return params.steps_words
    return params.max_words


def _repeats(c: Candidate, chosen: list[Candidate], redundancy: float) -> bool:
    for o in chosen:
        if o.hit.chunk_id == c.hit.chunk_id and not (c.end <= o.start or o.end <= c.start):
            return True  # overlapping spans of one chunk
        if c.vec is not None and o.vec is not None:
            cos = float(c.vec @ o.vec / ((np.linalg.norm(c.vec) * np.linalg.norm(o.vec)) or 1.0))
            if cos >= redundancy:
                return True
        # One sentence restating a fact already chosen ("needs 112–154g" / "should target 112–154 grams")
        # is a repeat too; a shorter window without it may still be taken.
        if any(float(a @ b) >= redundancy for a in c.sentence_vecs for b in o.sentence_vecs):
            return True
        sa, sb = c.stems, o.stems
        if sa and sb and len(sa & sb) / min(len(sa), len(sb)) >= 0.7:
            return True
    return False


def gather(query: Query, hits: list[Hit], index: SearchIndex, params: AnswerParams) -> tuple[list[Candidate], float]:
    """The candidate units of the top answerable chunks, and the best chunk's score."""
    considered = [h for h in hits if not h.chunk.is_reference][: params.chunks_considered]
    if not considered:
        return [], 0.0
    cands = candidates(considered, index, params.max_window, budget(query, params))
    if query.answer_type != "yes_no":
        # "Yes — for both..." answers the FAQ's question, not this one; the window after it may answer.
        cands = [c for c in cands if not c.opens_with_verdict]
    return cands, considered[0].score


def score_candidates(
    query: Query, qvec: np.ndarray, hits: list[Hit], index: SearchIndex, params: AnswerParams, model: SelectionModel
) -> tuple[list[Candidate], np.ndarray]:
    """The candidate units of the top chunks and each one's probability of answering."""
    cands, top_score = gather(query, hits, index, params)
    if not cands:
        return [], np.zeros(0)
    return cands, model.probability(features(query, qvec, cands, top_score))


def select(query: Query, cands: list[Candidate], probs: np.ndarray, params: AnswerParams) -> list[Candidate]:
    """The most likely unit, then others nearly as likely that add something new, within the budget;
    in the order they are shown."""
    if not cands:
        return []
    order = np.argsort(-probs, kind="stable")
    best = float(probs[order[0]])
    chosen = [cands[int(order[0])]]
    used = chosen[0].words
    limit = budget(query, params)
    for i in order[1:]:
        c = cands[int(i)]
        if len(chosen) >= params.max_units or probs[i] < max(params.min_probability, params.keep_ratio * best):
            break
        if used + c.words > limit or _repeats(c, chosen, params.redundancy):
            continue
        chosen.append(c)
        used += c.words
    # The most likely unit opens the answer, since a reader takes the first sentence as the answer; units
    # of one passage stay together, in the article's order.
    lead: dict[str, int] = {}
    for i, c in enumerate(chosen):
        lead.setdefault(c.hit.chunk_id, i)
    return sorted(chosen, key=lambda c: (lead[c.hit.chunk_id], c.start))


def to_units(chosen: list[Candidate], probs: list[float]) -> list[Unit]:
    """One answer unit per shown sentence or item, each followed by the citation of the span it belongs to."""
    units: list[Unit] = []
    for c, p in zip(chosen, probs, strict=True):
        for k, part in enumerate(c.parts):
            shown = f"{c.label}: {part}" if k == 0 and c.label else part
            units.append(Unit(shown, c.hit, c.start, c.end, p, c.rank, vec=c.vec))
    return units


def compose(
    query: Query, qvec: np.ndarray, hits: list[Hit], index: SearchIndex, params: AnswerParams, model: SelectionModel
) -> list[Unit]:
    cands, probs = score_candidates(query, qvec, hits, index, params, model)
    chosen = select(query, cands, probs, params)
    by_id = {id(c): float(p) for c, p in zip(cands, probs, strict=True)}
    return to_units(chosen, [by_id[id(c)] for c in chosen])


def referral_unit(query: Query, qvec: np.ndarray, index: SearchIndex) -> Unit | None:
    """The articles' own advice to see a professional, for questions about pain or injury."""
    if not any(c.id == "injury" for c in query.concepts):
        return None
    # The nearest sentences that name a professional, from the sentence index: no scan of the corpus.
    best = next(((ci, si) for ci, si in index.sentences_containing(qvec, REFERRAL)
                 if not index.is_planted(index.chunks[ci].chunk, *index.chunks[ci].chunk.sentences[si])), None)
    if best is None:
        return None
    ci, si = best
    sc = index.chunks[ci]
    hit = Hit(ci, sc.chunk_id, sc.chunk, 0.0, 0.0, 0.0, score=0.0)
    s, e = sc.chunk.sentences[si]
    return Unit(sc.chunk.text[s:e].strip(), hit, s, e, float(index.sentence_sims(ci, qvec)[si]), rank=99)
