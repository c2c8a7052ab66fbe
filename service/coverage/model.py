"""The coverage report's computations, on plain data (lists, dicts, numpy arrays): no Engine, no I/O.

Thresholds are module constants, chosen by looking at the shipped corpus (see the numbers below and
in the report's "How to read this" section); each function takes them as parameters so tests and
future corpora can move them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

# A passage counts as about a topic without naming it when cosine(chunk, topic probe) reaches this.
# On the shipped corpus (95 chunks x 33 topics) pairs with no lexicon term have median ~0.25; at 0.55
# 17 such pairs pass, about half of them wrong (e.g. "hip self-tests" for a squat how-to); at 0.60
# 3 pass ("Are Your Hips Weak?" for hip self-tests, two table rows for types of running).
TOPIC_SEMANTIC_MIN = 0.60

# Two sentences in different articles "say the same thing" at this cosine or above. Cross-article
# sentence pairs: 71,661, median 0.30, p99 0.65, p99.9 0.74, max 0.88. Of the mutual-best pairs,
# 17 reach 0.75 and most restate one claim ("running is not a muscle-building exercise" /
# "running does not typically build large muscle mass"); below ~0.74 generic intros take over.
OVERLAP_MIN_COS = 0.75
OVERLAP_MIN_CHARS = 40  # shorter sentences are lead-ins ("To do squats:") that match any list

# Gap questions join one cluster when their average cosine distance is at most this (average
# linkage). On 27 hand-labelled off-corpus questions (shoes, marathon pacing, hydration, sleep...)
# 0.55 scored best (adjusted Rand 0.77; 0.50: 0.62, 0.60: 0.66 because hydration and sleep merged).
CLUSTER_DISTANCE = 0.55
MAX_LINKED = 2000  # gap questions linked pairwise at once (2,000: ~0.3 s; 8,000: ~5 s)

# Answered, but with confidence below abstain threshold + this margin, still marks a thin answer.
# Eval set: unanswerable questions reach at most 0.445 (threshold 0.449); the weakest 10% of
# answerable ones sit below 0.499, i.e. threshold + 0.05.
LOW_CONFIDENCE_MARGIN = 0.05


@dataclass(frozen=True)
class Topic:
    id: str
    label: str
    kind: str  # muscle_group | exercise | theme


@dataclass(frozen=True)
class Passage:
    chunk_id: str
    article_id: str
    section: str
    text: str


@dataclass(frozen=True)
class Match:
    """Why one passage counts for one topic: the lexicon terms it names and/or its cosine to the topic."""

    chunk_id: str
    terms: tuple[str, ...]
    cosine: float

    @property
    def how(self) -> str:
        return "term" if self.terms else "meaning"


@dataclass
class Cell:
    topic_id: str
    article_id: str
    matches: list[Match] = field(default_factory=list)
    chars: int = 0
    share: float = 0.0  # of the article's (non-reference) characters

    @property
    def passages(self) -> int:
        return len(self.matches)


def topic_matrix(
    topics: Sequence[Topic],
    article_ids: Sequence[str],
    passages: Sequence[Passage],
    terms: Sequence[Sequence[tuple[str, ...]]],
    cosines: np.ndarray,
    semantic_min: float = TOPIC_SEMANTIC_MIN,
) -> dict[tuple[str, str], Cell]:
    """One Cell per (topic, article). ``terms[p][t]`` are the lexicon terms of topic t found in passage
    p (its section trail and text); ``cosines[p, t]`` its embedding's cosine to the topic. A passage is
    about a topic when it names it or is very close in meaning: terms alone would miss paraphrase, and
    cosines alone over-count, since short table rows sit close to every muscle topic at once."""
    cells = {(t.id, a): Cell(t.id, a) for t in topics for a in article_ids}
    totals = dict.fromkeys(article_ids, 0)
    for p in passages:
        totals[p.article_id] = totals.get(p.article_id, 0) + len(p.text)
    for pi, p in enumerate(passages):
        for ti, t in enumerate(topics):
            found, cos = tuple(terms[pi][ti]), float(cosines[pi, ti])
            if found or cos >= semantic_min:
                cell = cells[(t.id, p.article_id)]
                cell.matches.append(Match(p.chunk_id, found, round(cos, 4)))
                cell.chars += len(p.text)
    for cell in cells.values():
        total = totals.get(cell.article_id, 0)
        # Share rather than a count: the hamstrings article is 7 chunks, the muscle-building one 33.
        cell.share = round(cell.chars / total, 4) if total else 0.0
        cell.matches.sort(key=lambda m: -m.cosine)  # the passages closest to the topic first
    return cells


def uncovered_topics(
    topics: Sequence[Topic], cells: dict[tuple[str, str], Cell], article_ids: Sequence[str]
) -> list[str]:
    """Topic ids that no article says anything about."""
    return [t.id for t in topics if all(cells[(t.id, a)].passages == 0 for a in article_ids)]


def unit_rows(rows: np.ndarray) -> np.ndarray:
    """Rows scaled to length 1 (zero rows stay zero), so dot products are cosines."""
    rows = np.asarray(rows, dtype=np.float32)
    norms = np.linalg.norm(rows, axis=-1, keepdims=True)
    return rows / np.where(norms == 0, 1.0, norms)


# --- gaps --------------------------------------------------------------------------------------

def is_gap(abstained: bool, confidence: float | None, threshold: float, margin: float = LOW_CONFIDENCE_MARGIN) -> bool:
    """Declined, or answered with confidence so close to the threshold that the answer is thin."""
    if abstained:
        return True
    return confidence is not None and confidence < threshold + margin


def cluster_labels(vectors: np.ndarray, distance: float = CLUSTER_DISTANCE, max_linked: int = MAX_LINKED) -> list[int]:
    """Agglomerative clusters (average linkage, cosine distance) of unit vectors; labels 0..k-1.
    Average linkage: single linkage chains unrelated topics through one bridging question, complete
    linkage splits paraphrases that share few words.

    Linkage costs O(n²) time and memory, so past ``max_linked`` rows (callers put the most-asked first)
    the first ``max_linked`` are linked, each later row joins the cluster whose centroid is nearest
    within ``distance``, and the rows that join none are clustered the same way among themselves."""
    n = len(vectors)
    if n == 0:
        return []
    if n == 1:
        return [0]
    if n > max_linked:
        return _cluster_in_rounds(np.asarray(vectors, dtype=np.float64), distance, max_linked)
    from scipy.cluster.hierarchy import fcluster, linkage
    from scipy.spatial.distance import pdist

    dist = np.clip(pdist(np.asarray(vectors, dtype=np.float64), metric="cosine"), 0.0, 2.0)
    raw = fcluster(linkage(dist, method="average"), t=distance, criterion="distance")
    order: dict[int, int] = {}
    return [order.setdefault(int(x), len(order)) for x in raw]


def _cluster_in_rounds(vectors: np.ndarray, distance: float, max_linked: int) -> list[int]:
    head = cluster_labels(vectors[:max_linked], distance, max_linked)
    k = max(head) + 1
    centroids = np.zeros((k, vectors.shape[1]))
    np.add.at(centroids, head, vectors[:max_linked])
    centroids /= np.maximum(np.linalg.norm(centroids, axis=1, keepdims=True), 1e-12)
    rest = vectors[max_linked:]
    sims = rest @ centroids.T
    nearest = sims.argmax(axis=1)
    joins = 1.0 - sims[np.arange(len(rest)), nearest] <= distance
    labels = head + [int(c) if j else -1 for c, j in zip(nearest, joins, strict=True)]
    loose = [max_linked + i for i, j in enumerate(joins) if not j]
    if loose:
        for i, lab in zip(loose, cluster_labels(vectors[loose], distance, max_linked), strict=True):
            labels[i] = k + lab
    return labels


# --- overlap -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Sentence:
    article_id: str
    chunk_id: str
    section: str
    text: str


def is_claim(text: str, min_chars: int = OVERLAP_MIN_CHARS) -> bool:
    """Sentences worth comparing: not lead-ins ("Squat variations include:") or FAQ questions, which
    match each other across articles without saying anything."""
    t = text.strip()
    return len(t) >= min_chars and not t.endswith((":", "?"))


def find_overlaps(sentences: Sequence[Sentence], vectors: np.ndarray, min_cos: float = OVERLAP_MIN_COS,
                  min_chars: int = OVERLAP_MIN_CHARS) -> list[dict[str, Any]]:
    """Pairs of sentences in different articles that say the same thing, best first. A pair is kept
    only if each sentence is the other's best match in the other article: a generic sentence
    ("Strength training provides numerous benefits to runners") otherwise pairs with a dozen others."""
    keep = np.array([is_claim(s.text, min_chars) for s in sentences], dtype=bool)
    if keep.sum() < 2:
        return []
    vecs = np.asarray(vectors, dtype=np.float32)
    sims = vecs @ vecs.T
    arts = np.array([s.article_id for s in sentences])
    sims[~keep, :] = -1.0
    sims[:, ~keep] = -1.0
    sims[arts[:, None] == arts[None, :]] = -1.0  # same article: not overlap between articles
    masks = {a: arts == a for a in set(arts.tolist())}
    best_in: dict[tuple[int, str], int] = {}

    def best(i: int, article: str) -> int:
        if (i, article) not in best_in:
            row = np.where(masks[article], sims[i], -np.inf)
            best_in[(i, article)] = int(np.argmax(row))
        return best_in[(i, article)]

    pairs: list[dict[str, Any]] = []
    for i, j in zip(*np.nonzero(np.triu(sims >= min_cos, k=1)), strict=True):
        i, j = int(i), int(j)
        if best(i, str(arts[j])) == j and best(j, str(arts[i])) == i:
            a, b = sentences[i], sentences[j]
            if a.article_id > b.article_id:
                a, b = b, a
            pairs.append({"cosine": round(float(sims[i, j]), 4), "a": _sentence_dict(a), "b": _sentence_dict(b)})
    pairs.sort(key=lambda p: -p["cosine"])
    return pairs


def _sentence_dict(s: Sentence) -> dict[str, str]:
    return {"article_id": s.article_id, "chunk_id": s.chunk_id, "section": s.section, "text": s.text}


def overlap_by_article_pair(pairs: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """How many overlapping sentences each pair of articles shares, most first."""
    counts: dict[tuple[str, str], int] = {}
    for p in pairs:
        key = (p["a"]["article_id"], p["b"]["article_id"])
        counts[key] = counts.get(key, 0) + 1
    return [{"a": a, "b": b, "pairs": n} for (a, b), n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))]
