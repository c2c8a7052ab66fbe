"""Gap questions into report rows and clusters a content team can act on: each with its size, first and
last ask, trend, nearest article section, mark and (for a cluster marked written) whether the current
index now answers it. Pure: numpy arrays and the typed rows of ``gap_report``."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np

from service.coverage.asks import Ask, trend
from service.coverage.classify import Assessment, GapClass, majority_class
from service.coverage.gap_report import (
    ClosureInfo,
    GapCluster,
    GapQuestionRow,
    MarkInfo,
    NearestSection,
    TrendInfo,
)
from service.coverage.marks import Mark
from service.coverage.model import Passage

CLOSURE_SAMPLE = 5  # questions of a cluster marked written asked again after an ingest


@dataclass(frozen=True)
class AskedQuestion:
    """One distinct gap question: its asks (repeats collapsed), and what the current index makes of it."""

    question: str  # as first asked
    key: str
    asks: tuple[Ask, ...]
    assessment: Assessment
    gap_class: GapClass

    @property
    def asked(self) -> int:
        return len(self.asks)


def group_asks(asks: Sequence[Ask]) -> dict[str, list[Ask]]:
    """Asks by question key, in the order each question was first asked."""
    groups: dict[str, list[Ask]] = {}
    for a in asks:
        groups.setdefault(a.key, []).append(a)
    return groups


def iso(when: datetime | None) -> str | None:
    return when.strftime("%Y-%m-%dT%H:%M:%SZ") if when is not None else None


def _times(asks: Sequence[Ask]) -> list[datetime]:
    return sorted(a.at for a in asks if a.at is not None)


def question_row(q: AskedQuestion) -> GapQuestionRow:
    times = _times(q.asks)
    confs = [a.confidence for a in q.asks if a.confidence is not None]
    declined = sum(a.abstained for a in q.asks)
    return GapQuestionRow(
        question=q.question, gap_class=q.gap_class, asked=q.asked, declined=declined,
        low_confidence=q.asked - declined, lowest_confidence=min(confs) if confs else None,
        sources=sorted({a.source for a in q.asks}), first_seen=iso(times[0] if times else None),
        last_seen=iso(times[-1] if times else None), answered_now=q.assessment.answered,
    )


def ranked_rows(questions: Sequence[AskedQuestion]) -> list[GapQuestionRow]:
    """Most asked first, then most recent."""
    rows = sorted((question_row(q) for q in questions), key=lambda r: r.last_seen or "", reverse=True)
    return sorted(rows, key=lambda r: -r.asked)  # stable: the most recent first among equals


def medoid(vectors: np.ndarray, asked: Sequence[int]) -> int:
    """The row most similar to all the others (unit rows): the cluster's most central question. Near-ties
    (any two questions are equally central to each other) go to the most asked."""
    centrality = np.round(vectors @ vectors.sum(axis=0), 4)
    return max(range(len(asked)), key=lambda i: (float(centrality[i]), asked[i], -i))


def nearest_section(vectors: np.ndarray, passages: Sequence[Passage], passage_vecs: np.ndarray,
                    titles: Mapping[str, str]) -> NearestSection | None:
    """The passage with the highest mean cosine to the questions' vectors (unit rows)."""
    if not len(passages) or not len(vectors):
        return None
    mean = (vectors @ passage_vecs.T).mean(axis=0)
    best = int(np.argmax(mean))
    p = passages[best]
    return NearestSection(article_id=p.article_id, title=titles.get(p.article_id, p.article_id),
                          section=p.section, similarity=round(float(mean[best]), 2))


def closure_sample(members: Sequence[AskedQuestion], size: int = CLOSURE_SAMPLE) -> list[AskedQuestion]:
    """The cluster's most asked questions (ties: alphabetical), which stand for it when asked again."""
    return sorted(members, key=lambda q: (-q.asked, q.key))[:size]


def closure(mark: Mark | None, index_version: str, sample: Sequence[Assessment],
            titles: Mapping[str, str]) -> ClosureInfo | None:
    """For a cluster marked written: "waiting" until an ingest changes the index, then "closed" when most
    of ``sample`` (its questions asked of the current index) is answered, by the article cited most."""
    if mark is None or mark.status != "written":
        return None
    if mark.index_version == index_version:
        return ClosureInfo(state="waiting", index_version=index_version, asked=0, answered=0)
    answered = [a for a in sample if a.answered and a.cited]
    cited = Counter(aid for a in answered for aid in a.cited)
    article = min(cited, key=lambda aid: (-cited[aid], aid)) if cited else None
    closed = len(answered) * 2 > len(sample)
    return ClosureInfo(state="closed" if closed else "open", index_version=index_version, asked=len(sample),
                       answered=len(answered), article_id=article,
                       title=titles.get(article, article) if article is not None else None)


def make_cluster(cluster_id: str, members: Sequence[AskedQuestion], vectors: np.ndarray, now: datetime,
                 nearest: NearestSection | None, mark: Mark | None, closed: ClosureInfo | None) -> GapCluster:
    """``vectors``: the members' unit vectors, in order."""
    asks = [a for q in members for a in q.asks]
    times = _times(asks)
    declined = sum(a.abstained for a in asks)
    rows = sorted((question_row(q) for q in members), key=lambda r: (-r.asked, r.question))
    t = trend(times, now, times[0] if times else None)
    return GapCluster(
        id=cluster_id, rank=0, label=members[medoid(vectors, [q.asked for q in members])].question,
        gap_class=majority_class((q.gap_class, q.asked) for q in members),
        asked=len(asks), distinct=len(members), declined=declined, low_confidence=len(asks) - declined,
        first_seen=iso(times[0] if times else None), last_seen=iso(times[-1] if times else None),
        trend=TrendInfo(last_7_days=t.last_7_days, last_30_days=t.last_30_days, daily=list(t.daily),
                        direction=t.direction),
        nearest=nearest, questions=rows,
        mark=MarkInfo(status=mark.status, note=mark.note, marked_at=mark.marked_at,
                      index_version=mark.index_version) if mark is not None else None,
        closure=closed,
    )


def rank(clusters: Sequence[GapCluster]) -> list[GapCluster]:
    """By recent frequency: asks in the last 7 days, then 30, then all time; a cluster a new article has
    closed goes last, since its questions are answered now."""
    order = sorted(clusters, key=lambda c: (
        c.closure is not None and c.closure.state == "closed",
        -c.trend.last_7_days, -c.trend.last_30_days, -c.asked, -c.declined, c.id,
    ))
    return [c.model_copy(update={"rank": i}) for i, c in enumerate(order, 1)]
