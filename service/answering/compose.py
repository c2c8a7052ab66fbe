"""Compose a short extractive answer from retrieved chunks. Pure.

Candidates come from the articles' structure (``units``): sentence windows, lists with their lead-in,
numbered steps, single items, table rows. Each is scored by the learned ``SelectionModel``; the best
is taken, then others at least ``keep_ratio`` as likely that repeat nothing already chosen (no
overlapping span, no near-duplicate sentence) and fit the word budget of the question's answer type,
the next always the one whose likelihood, raised by the question words it adds (``coverage``), is highest;
a list item chosen gives way to its whole list when that is likely enough and fits; then each keeps
the sentences after it that draw its point, while the budget has room. A question
asking for a set of muscles or exercises is led by the list that is that set (``set_lists``), or, for
exercises the articles give a paragraph each, by the sentences that introduce them (``introductions``).
Every unit quotes the exact article span it shows.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, replace

import numpy as np

from ingest.lexicon import Lexicon
from ingest.models import Chunk
from service.answering.abstain import subject_unnamed
from service.answering.citations import Unit
from service.answering.query import Query
from service.answering.retrieval import Hit, SearchIndex
from service.answering.selection import SelectionModel, features
from service.answering.text import stem, stems, words
from service.answering.units import VARIATION_HEADING, Candidate, candidates, extended, heading_label

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
    keep_ratio: float = 0.6  # a further unit must be this likely relative to the best
    min_probability: float = 0.1
    redundancy: float = 0.85  # cosine above which a unit repeats one already chosen
    coverage: float = 0.5  # weight of the question's words a further unit adds that the answer lacks


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
    answerable = [h for h in hits if not h.chunk.is_reference]
    considered = answerable[: params.chunks_considered]
    if query.answer_type == "set" and not any(h.chunk.kind in ("list", "table") for h in considered):
        # A set is answered by the set: the best-ranked list or table retrieved is weighed with the
        # few chunks considered ("Which muscles does running work?" has its answer in a list ranked
        # below the article's introduction and its FAQ).
        structured = next((h for h in answerable[params.chunks_considered :] if h.chunk.kind in ("list", "table")),
                          None)
        if structured is not None:
            considered.append(structured)
    if asked_kind(query) == "exercise" and considered:
        # Exercises an article gives a paragraph each are spread over its chunks: the further ones of the
        # best chunk's article retrieved are weighed too, for the paragraphs that introduce them.
        article = considered[0].chunk.article_id
        considered += [h for h in answerable[params.chunks_considered :]
                       if h.chunk.article_id == article and h not in considered]
    if not considered:
        return [], 0.0
    cands = candidates(considered, index, params.max_window, budget(query, params))
    if query.answer_type == "set":
        # the steps of a procedure are no set ("What does the quadruped hip extension target?" is answered
        # by the muscles it names, not by how to do it)
        cands = [c for c in cands if c.kind != "steps"]
    if query.answer_type != "yes_no":
        # "Yes — for both..." answers the FAQ's question, not this one; the window after it may answer.
        cands = [c for c in cands if not c.opens_with_verdict]
    else:
        # A verdict answers the reader's yes/no question only if the FAQ asked about the same thing:
        # "Yes — lower body muscles are developed by running" does not answer "do I need a coach?", nor
        # "does creatine help runners build muscle?" (the articles never name creatine).
        focus = {stem(w) for w in query.focus}
        unnamed = subject_unnamed(query, index.mentions, index.discussed_concepts)
        cands = [c for c in cands
                 if not (c.opens_with_verdict
                         and (unnamed or (focus and c.own_question and not focus & stems(c.own_question))))]
    return cands, considered[0].hand_set


def score_candidates(
    query: Query, qvec: np.ndarray, hits: list[Hit], index: SearchIndex, params: AnswerParams, model: SelectionModel
) -> tuple[list[Candidate], np.ndarray]:
    """The candidate units of the top chunks and each one's probability of answering."""
    cands, top_score = gather(query, hits, index, params)
    if not cands:
        return [], np.zeros(0)
    return cands, model.probability(features(query, qvec, cands, top_score))


def _members(query: Query, chosen: list[Candidate], cands: list[Candidate], order: np.ndarray, room: int,
             redundancy: float, max_units: int) -> int:
    """A set spread over sections: when the best unit's section introduces child sections ("Are Your Hips
    Weak?" > "Hip Bridge Test", "The Standing Deep Squat Test") or is one of them, and their headings
    name what was asked for ("which tests…"), each one's likeliest unit is a member of the set. Adds
    them (of one article, at most ``max_units - 1``) to ``chosen`` within ``room`` words; returns the
    words added."""
    article, section = chosen[0].hit.chunk.article_id, chosen[0].hit.chunk.section
    if not section:
        return 0  # an article's introduction: its sections are the article, not the members of a set
    asked = {stem(w) for w in query.content}

    def member(chunk: Chunk) -> bool:
        sec = chunk.section
        related = (len(sec) == len(section) + 1 and sec[:-1] == section) or (
            len(sec) == len(section) >= 2 and sec[:-1] == section[:-1] and sec != section)
        return (chunk.article_id == article and related and not VARIATION_HEADING.match(sec[-1])
                and bool(asked & stems(sec[-1])))

    # Each member's units, likeliest first; members in the order of their likeliest unit.
    by_member: dict[tuple[str, ...], list[Candidate]] = {}
    for i in order[1:]:
        c = cands[int(i)]
        if member(c.hit.chunk):
            by_member.setdefault(c.hit.chunk.section, []).append(c)
    members = list(by_member.values())[: max_units - 1]
    added = 0
    for n, units in enumerate(members):
        share = (room - added) // (len(members) - n)  # every member gets a fair part of what is left
        fitting = [c for c in units if c.words <= share and not _repeats(c, chosen, redundancy)]
        # a section's opening introduces its member ("The hip bridge test is a good way to…")
        pick = next((c for c in fitting if c.first == 0), fitting[0] if fitting else None)
        if pick is not None:
            chosen.append(pick)
            added += pick.words
    return added


# The plural a set question asks for, and the kind of lexicon concept its members are.
SET_NOUNS = {"muscles": "muscle_group", "muscle": "muscle_group", "exercises": "exercise", "moves": "exercise",
             "stretches": "exercise"}


def set_lists(query: Query, cands: Sequence[Candidate], lexicon: Lexicon) -> set[int]:
    """The lists that are the set a question asks for, by position in ``cands``: for "which muscles does
    running work?", a list of three or more items, at least half of which name a muscle group, whose
    heading or lead-in names the rest of what was asked ("At a Glance: Muscles Used in Running"). A list
    that only mentions the words ("Running builds muscle by improving: Muscular endurance…") or lists
    other things is not."""
    asked = asked_kind(query)
    if asked is None:
        return set()
    rest = {stem(w) for w in query.focus if w not in SET_NOUNS}
    out = set()
    for i, c in enumerate(cands):
        items = c.parts[1:] if c.kind == "list" else []
        members = sum(any(k.kind == asked for k in lexicon.concepts_in(item)) for item in items)
        if len(items) >= 3 and members * 2 >= len(items) and rest <= stems(_list_title(c)):
            out.add(i)
    return out


def asked_kind(query: Query) -> str | None:
    """The kind of lexicon concept a set question asks for ("exercise" for "best excercises for weak
    hips", read with its typos repaired); None for any other question."""
    if query.answer_type != "set":
        return None
    asked = (query.corrections.get(w, w) for w in words(query.message))
    return next((SET_NOUNS[w] for w in asked if w in SET_NOUNS), None)


OPENING_WORDS = 5  # "The quadruped hip extension is": the subject a paragraph opens with


def introductions(query: Query, cands: Sequence[Candidate], order: np.ndarray, lexicon: Lexicon) -> list[int]:
    """A set of exercises the articles give one paragraph each, without a list of them ("The clamshell
    targets the gluteus medius.", "The banded side step is excellent at…"): by position in ``cands``,
    for each exercise a paragraph opens by naming, that paragraph's opening sentence; at least three
    exercises, or none."""
    if asked_kind(query) != "exercise":
        return []
    out: dict[str, int] = {}
    for i in (int(k) for k in order):
        c = cands[i]
        if c.kind != "prose" or c.first != c.last or c.label or not c.opens_paragraph:
            continue  # its opening sentence alone, so the set fits; what follows may join it later
        opening = " ".join(c.parts[0].split()[:OPENING_WORDS])
        # "The hip bridge test is a good way to…" introduces a test named after an exercise
        named = next((k for term, k in lexicon.find(opening)
                      if k.kind == "exercise" and not re.search(rf"\b{re.escape(term)}\s+tests?\b", opening, re.I)),
                     None)
        if named is not None:
            out.setdefault(named.id, i)
    return list(out.values()) if len(out) >= 3 else []


def _list_title(c: Candidate) -> str:
    """What names a list: its innermost heading and its lead-in."""
    return " ".join([*c.hit.chunk.section[-1:], c.lead_in])


def select(query: Query, cands: list[Candidate], probs: np.ndarray, params: AnswerParams,
           lists: AbstractSet[int] = frozenset(), lexicon: Lexicon | None = None) -> list[Candidate]:
    """The most likely unit, then others at least ``keep_ratio`` as likely that repeat nothing chosen and
    fit the budget, each the one that raises likelihood by coverage most (see ``AnswerParams.coverage``);
    in the order they are shown."""
    if not cands:
        return []
    order = np.argsort(-probs, kind="stable")
    best = float(probs[order[0]])
    if query.answer_type == "variation" and query.focus:
        # "How do I make it harder?" after an exercise asks for that exercise's variation, which the
        # articles give under a "Challenge Yourself" heading naming it: the answer is that section's,
        # likeliest unit first, not the exercise's own steps again. The heading must name most of the
        # exercise ("Banded Side Walk" for a banded side step; "side" alone is not a side plank).
        focus = {stem(w) for w in query.focus}
        named = {int(i): len(focus & cands[int(i)].variation_heading) / len(focus)
                 for i in order if cands[int(i)].in_variation}
        most = max(named.values(), default=0.0)
        if most > 0.5:
            order = np.asarray([i for i in order if named.get(int(i)) == most])
            best = float(probs[order[0]])
    leads = [int(i) for i in order if int(i) in lists and probs[int(i)] >= params.min_probability]
    if leads:
        # the set asked for (``set_lists``) leads, whatever the learned weights, fitted on few set
        # questions, think of the prose around it
        order = np.asarray([leads[0], *(int(i) for i in order if int(i) != leads[0])])
        best = max(best, float(probs[leads[0]]))
    limit = budget(query, params)
    # A set of exercises with no list of them is its exercises, each by the sentence that introduces it,
    # likeliest first, while they fit; different exercises, so near in meaning ("targets the gluteus
    # medius") is no repeat.
    intros = introductions(query, cands, order, lexicon) if not leads and lexicon is not None else []
    chosen: list[Candidate] = []
    used = 0
    for i in intros:
        if used + cands[i].words <= limit:
            chosen.append(cands[i])
            used += cands[i].words
    if chosen:
        order = np.asarray([*intros, *(int(i) for i in order if int(i) not in intros)])
    else:
        chosen = [cands[int(order[0])]]
        used = chosen[0].words
        if query.answer_type == "set":
            used += _members(query, chosen, cands, order, limit - used, params.redundancy, params.max_units)
    # Greedy, with a diminishing-returns bonus for coverage: each further unit is the one whose
    # likelihood, raised by the share of the question's words it adds to the answer, is highest
    # ("which lunge ..., and why ...?" takes the reason once the lunge is there). With ``coverage`` 0
    # that is simply the likeliest next.
    asked = {stem(w) for w in query.content}
    covered = set().union(*(c.stems for c in chosen)) & asked
    floor = max(params.min_probability, params.keep_ratio * best)
    eligible = [int(i) for i in order[1:] if probs[i] >= floor]  # likeliest first

    def gain(i: int) -> float:
        new = len((cands[i].stems & asked) - covered) / len(asked) if asked else 0.0
        return float(probs[i]) * (1.0 + params.coverage * new)

    while len(chosen) < params.max_units:
        # a unit that doesn't fit or repeats one chosen never will: the answer only grows
        eligible = [i for i in eligible
                    if used + cands[i].words <= limit and not _repeats(cands[i], chosen, params.redundancy)]
        if not eligible:
            break
        pick = max(eligible, key=gain)  # the first of equal gains: the likelier
        eligible.remove(pick)
        chosen.append(cands[pick])
        used += cands[pick].words
        covered |= cands[pick].stems & asked
    used += _whole_lists(chosen, cands, probs, floor, limit - used, params.redundancy)
    # The most likely unit opens the answer, since a reader takes the first sentence as the answer; units
    # of one passage stay together, in the article's order. A variation builds on its exercise ("Set up
    # the same as you would with the standard bridge"), so it follows the exercise when that is chosen too.
    lead: dict[str, float] = {}
    for i, c in enumerate(chosen):
        lead.setdefault(c.hit.chunk_id, i)
    for c in chosen:
        base = _exercise_of(c, chosen)
        if base is not None:
            lead[c.hit.chunk_id] = lead[base.hit.chunk_id] + 0.5
    return sorted(chosen, key=lambda c: (lead[c.hit.chunk_id], c.start))


def _whole_lists(chosen: list[Candidate], cands: Sequence[Candidate], probs: np.ndarray, floor: float, room: int,
                 redundancy: float) -> int:
    """Each chosen list item replaced, in place, by its whole list when that list is likely enough to be
    chosen on its own (``floor``) and fits in ``room`` more words: "More work from stabilisers: glute
    med/min…" is one of three things trail running asks of the body, and the list says all three. Returns
    the words added."""
    added = 0
    for k, c in enumerate(chosen):
        if c.kind != "item":
            continue
        others = chosen[:k] + chosen[k + 1 :]
        whole = [(float(probs[i]), L) for i, L in enumerate(cands)
                 if L.kind == "list" and L.hit.chunk_id == c.hit.chunk_id and L.start <= c.start and c.end <= L.end
                 and probs[i] >= floor and L.words - c.words <= room - added and not _repeats(L, others, redundancy)]
        if whole:
            longer = max(whole, key=lambda pl: pl[0])[1]
            added += longer.words - c.words
            chosen[k] = longer
    return added


def _exercise_of(variation: Candidate, chosen: Sequence[Candidate]) -> Candidate | None:
    """The chosen unit of the same article that names the exercise a "Challenge Yourself" unit varies
    ("To do a bridge:" for "Challenge Yourself: Bridge Variation"), if any."""
    named = variation.variation_heading - {stem("variation")}
    if not named:
        return None
    return next((c for c in chosen if not c.in_variation and c.hit.chunk.article_id == variation.hit.chunk.article_id
                 and named <= stems(f"{c.lead_in} {c.text}")), None)


def to_units(chosen: list[Candidate], probs: list[float]) -> list[Unit]:
    """One answer unit per shown sentence or item, each followed by the citation of the span it belongs to."""
    units: list[Unit] = []
    before: Candidate | None = None
    for c, p in zip(chosen, probs, strict=True):
        label = c.label
        if c.is_list and not c.lead_in and before is not None and before.is_list:
            # steps right after a list would read as its continuation (and in Markdown, be one): their
            # heading names them ("Challenge Yourself: Bridge Variation"); a list has its label already
            label = heading_label(c.hit.chunk)
        for k, part in enumerate(c.parts):
            opening = f"{label}: " if k == 0 and label else ""
            # what stays on the line before a list: its label and lead-in
            head = (opening + c.lead_in).rstrip() if k == 0 and c.is_list else ""
            units.append(Unit(opening + part, c.hit, c.start, c.end, p, c.rank, vec=c.vec,
                              layout=c.layout[k] if c.layout else "prose", head=head))
        before = c
    return units


def compose(
    query: Query, qvec: np.ndarray, hits: list[Hit], index: SearchIndex, params: AnswerParams, model: SelectionModel
) -> list[Unit]:
    cands, probs = score_candidates(query, qvec, hits, index, params, model)
    chosen = select(query, cands, probs, params, set_lists(query, cands, index.lexicon), index.lexicon)
    by_id = {id(c): float(p) for c, p in zip(cands, probs, strict=True)}
    chosen = complete(chosen, index, budget(query, params) - sum(c.words for c in chosen), params.redundancy)
    # an extended unit is as likely as the scored unit it completes
    return to_units(chosen, [by_id[id(c.completes if c.completes is not None else c)] for c in chosen])


def complete(chosen: list[Candidate], index: SearchIndex, room: int, redundancy: float) -> list[Candidate]:
    """Each chosen prose unit with the sentences after it that draw its point or name what it announces
    (``units.extended``), while they fit in ``room`` words and repeat nothing else chosen (no overlapping
    span, no near-duplicate sentence). A longer unit's ``completes`` is the chosen unit it replaces."""
    out = list(chosen)
    for k in range(len(out)):
        while (longer := extended(out[k], index)) is not None:
            words = longer.words - out[k].words
            # the sentence added, alone, against the others (the longer unit's mean vector drifts towards
            # its paragraph's neighbours, which says nothing about the new sentence)
            s, _ = longer.hit.chunk.sentences[longer.last]
            vecs = longer.sentence_vecs[len(out[k].sentence_vecs) :]
            added = replace(longer, first=longer.last, start=s, parts=longer.parts[-1:], label="",
                            vec=vecs[0] if vecs else None, sentence_vecs=vecs)
            if words > room or _repeats(added, out[:k] + out[k + 1 :], redundancy):
                break
            out[k], room = longer, room - words
    return out


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


def already_quoted(unit: Unit, units: Sequence[Unit]) -> bool:
    """Whether one of ``units`` already quotes part of ``unit``'s span: the referral is added after the
    answer is chosen, and must not repeat a sentence the answer holds inside a longer quote."""
    a, b = unit.hit.chunk.start + unit.start, unit.hit.chunk.start + unit.end
    return any(u.hit.chunk.article_id == unit.hit.chunk.article_id
               and u.hit.chunk.start + u.start < b and a < u.hit.chunk.start + u.end for u in units)
