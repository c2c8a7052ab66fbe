"""Offline metrics. Retrieval metrics come from ir_measures; the rest are simple counts. Pure."""

from __future__ import annotations

import re
import statistics
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

import ir_measures
from ir_measures import RR, nDCG

RANKED_MEASURES = {"mrr@10": RR @ 10, "ndcg@10": nDCG @ 10}
RECALL_AT = (1, 3, 5)
RETRIEVAL_MEASURES = (*(f"recall@{k}" for k in RECALL_AT), *RANKED_MEASURES)
MARKER = re.compile(r"\s*\[\d+\]")
BULLET = re.compile(r"^[ \t]*[-•*][ \t]+", re.MULTILINE)  # a list item's bullet: layout, not words


def plain(answer: str) -> str:
    """The answer's words: without citation markers or list bullets."""
    return BULLET.sub("", MARKER.sub("", answer))


def normalise_text(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).lower()
    text = re.sub(r"[‐‑‒–—−]", "-", text).replace("’", "'").replace("“", '"').replace("”", '"')
    return re.sub(r"\s+", " ", text)


def fact_coverage(answer: str, facts: Sequence[Sequence[str]]) -> float:
    """Share of fact groups with at least one acceptable alternative in the answer."""
    if not facts:
        return 1.0
    text = normalise_text(plain(answer))
    return sum(any(normalise_text(alt) in text for alt in group) for group in facts) / len(facts)


def answer_words(answer: str) -> int:
    return len(plain(answer).split())


def cited_sentence_share(answer: str) -> float:
    """Share of answer sentences that a citation marker follows before the next sentence starts."""
    from service.answering.citations import split_sentences  # the same marker-aware splitting the verifier uses

    sentences = [s for s in split_sentences(answer.strip()) if MARKER.sub("", s).strip()]
    return sum(bool(re.search(r"\[\d+\]\s*$", s)) for s in sentences) / len(sentences) if sentences else 0.0




def hygiene_defects(answer: str, cited_sections: Sequence[str]) -> list[str]:
    """What a careful editor would never let through, by name: an article's own question ("question"),
    a lead-in ending in ":" with no items after it ("empty_lead_in"), an opening sentence that starts
    with a pronoun whose referent the answer never gives ("dangling_pronoun"), a quote from a reference
    list ("reference_quote")."""
    from service.answering.citations import split_sentences
    from service.answering.units import PRONOUN_START

    defects = []
    sentences = [BULLET.sub("", MARKER.sub("", s)).strip() for s in split_sentences(answer.strip())]
    sentences = [s for s in sentences if s]
    if any(s.endswith("?") for s in sentences):
        defects.append("question")
    # What stands before each citation marker is one quoted unit: a unit ending in ":" announced items it lacks.
    if any(piece.strip().endswith(":") for piece in re.split(r"\[\d+\]", answer)):
        defects.append("empty_lead_in")
    # The composer's own rule for a pronoun that needs a referent (an expletive "It may be hard to..." doesn't).
    if sentences and PRONOUN_START.match(sentences[0]):
        defects.append("dangling_pronoun")
    if any(section.split(" > ")[-1] == "References" for section in cited_sections):
        defects.append("reference_quote")
    return defects


FAILURE_CLASSES = (
    "false decline", "missed decline", "hygiene", "missing context", "retrieval miss", "wrong unit type",
    "incomplete set",
)


def failure_class(row: dict[str, object]) -> str | None:
    """Why a question failed, the first that applies in ``FAILURE_CLASSES`` order; None when it did not."""
    answerable, abstained = bool(row["answerable"]), bool(row["abstained"])
    if answerable and abstained:
        return "false decline"
    if not answerable:
        return None if abstained else "missed decline"
    defects = row.get("defects") or []
    assert isinstance(defects, list)
    if "dangling_pronoun" in defects:
        return "missing context"
    if defects:
        return "hygiene"
    if float(row["fact_coverage"]) >= 1.0:  # type: ignore[arg-type]
        return None
    run = row.get("run") or {}
    assert isinstance(run, dict)
    top5 = sorted(run, key=lambda d: -run[d])[:5]
    if row.get("gold_found") and not any(d.startswith("gold") for d in top5):
        return "retrieval miss"
    if not row.get("gold_cited"):
        return "wrong unit type"
    return "incomplete set"


def locate(text: str, span: str) -> tuple[int, int] | None:
    i = text.find(span)
    return (i, i + len(span)) if i >= 0 else None


def overlaps(a: tuple[int, int], b: tuple[int, int]) -> int:
    return max(0, min(a[1], b[1]) - max(a[0], b[0]))


@dataclass(frozen=True)
class Passage:
    doc_id: str
    article_id: str
    start: int
    end: int


def span_holders(passages: Sequence[Passage], gold: Sequence[tuple[str, int, int]]) -> dict[int, set[int]]:
    """Passage index -> the gold spans it stands for: those it holds at least half of."""
    owners: dict[int, set[int]] = {}
    for gi, (aid, gs, ge) in enumerate(gold):
        for pi, p in enumerate(passages):
            if p.article_id == aid and overlaps((p.start, p.end), (gs, ge)) >= 0.5 * (ge - gs):
                owners.setdefault(pi, set()).add(gi)
    return owners


def evidence_run(passages: Sequence[Passage], gold: Sequence[tuple[str, int, int]]) -> dict[str, float]:
    """A ranked list of passages as an ir_measures run over *evidence* ids (for MRR and nDCG).

    A passage holding at least half of a gold span stands for that span; passages that hold no new
    span keep their own id. Systems with different chunkings are then judged on the same relevance
    units. A passage holding several spans emits them at successive ranks, which is right for nDCG's
    discount but not for recall at a cut-off: see ``gold_ranks``.
    """
    return run_over_evidence([p.doc_id for p in passages], span_holders(passages, gold))


def run_over_evidence(doc_ids: Sequence[str], owners: dict[int, set[int]]) -> dict[str, float]:
    """``evidence_run`` for passages whose gold spans are known already (``owners``: passage index -> the
    spans it holds)."""
    run: dict[str, float] = {}
    emitted: set[int] = set()
    rank = 0
    for pi, doc_id in enumerate(doc_ids):
        new = sorted(owners.get(pi, set()) - emitted)
        for gi in new or [None]:  # type: ignore[list-item]
            doc = f"gold{gi}" if gi is not None else f"p:{doc_id}"
            if doc not in run:
                run[doc] = 1000.0 - rank
                rank += 1
        emitted |= set(new)
    return run


def gold_ranks(passages: Sequence[Passage], gold: Sequence[tuple[str, int, int]]) -> list[int | None]:
    """For each gold span, the rank (from 0, counting distinct passages) of the first passage that
    holds it, or None. Recall@k is the share of spans ranked below k: one passage holding two spans
    retrieves both at its own rank."""
    return ranks_of_gold([p.doc_id for p in passages], span_holders(passages, gold), len(gold))


def ranks_of_gold(doc_ids: Sequence[str], owners: dict[int, set[int]], n_gold: int) -> list[int | None]:
    """``gold_ranks`` for passages whose gold spans are known already."""
    ranks: list[int | None] = [None] * n_gold
    seen: dict[str, int] = {}
    for pi, doc_id in enumerate(doc_ids):
        rank = seen.setdefault(doc_id, len(seen))
        for gi in owners.get(pi, ()):
            if ranks[gi] is None:
                ranks[gi] = rank
    return ranks


def retrieval_metrics(
    runs: dict[str, dict[str, float]], qrels: dict[str, dict[str, int]], ranks: dict[str, list[int | None]]
) -> dict[str, float]:
    """Recall@1/3/5 over gold spans (from ``gold_ranks``, averaged per question), MRR@10 and nDCG@10
    (ir_measures, over ``evidence_run``)."""
    if not qrels:
        return dict.fromkeys(RETRIEVAL_MEASURES, 0.0)
    agg = ir_measures.calc_aggregate(list(RANKED_MEASURES.values()), qrels, runs)
    out = {
        f"recall@{k}": statistics.fmean(
            sum(r is not None and r < k for r in rs) / len(rs) for rs in ranks.values() if rs
        )
        for k in RECALL_AT
    }
    return out | {name: float(agg[m]) for name, m in RANKED_MEASURES.items()}


def prf(tp: int, fp: int, fn: int) -> dict[str, float]:
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    f = 2 * p * r / (p + r) if p + r else 0.0
    return {"precision": p, "recall": r, "f1": f}


def percentile(values: Sequence[float], q: float) -> float:
    if not values:
        return 0.0
    if len(values) == 1:
        return float(values[0])
    return float(statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1])
