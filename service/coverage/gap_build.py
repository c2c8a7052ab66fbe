"""The gaps report from an Engine, the query log and an optional questions file: every gap question asked
again of the current index and classified, repeats collapsed, the ones worth writing about clustered, and
each cluster given its stable id, mark and (when marked written) whether the index now answers it.

The edges are here: the engine (asking and embedding) and, with a ``data_dir``, the marks and the cluster
registry under ``<data_dir>/coverage/``. The logic is in ``asks``, ``classify``, ``cluster_ids`` and ``gaps``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from service.coverage import model
from service.coverage.asks import REPEAT_WINDOW, Ask, asks_from_log, collapse_repeats, question_key
from service.coverage.classify import (
    CLASS_LABELS,
    GAP_CLASSES,
    WRITE_NEXT,
    Assessment,
    GapRules,
    assess,
    classify,
)
from service.coverage.cluster_ids import ClusterKeys, assign_ids
from service.coverage.gap_report import ClassTally, FileSummary, GapCluster, GapReport, GapRulesInfo, LogSummary
from service.coverage.gaps import (
    CLOSURE_SAMPLE,
    AskedQuestion,
    closure,
    closure_sample,
    group_asks,
    iso,
    make_cluster,
    nearest_section,
    rank,
    ranked_rows,
)
from service.coverage.marks import Mark, read_marks, read_registry, write_registry
from service.coverage.model import Passage, unit_rows

if TYPE_CHECKING:
    from service.answering.engine import Engine

Encoder = Callable[[list[str]], np.ndarray]
Assessor = Callable[[str], Assessment]

# Two asks from one known client within REPEAT_WINDOW count once at this cosine or above: rewordings of one
# question ("how do I stop shin splints" / "how to prevent shin splints?") score about 0.9 and more with
# all-MiniLM-L6-v2, different questions on one topic ("shin splints" / "calf pain") well below.
NEAR_DUPLICATE_COS = 0.9


def chat_assessor(engine: Engine) -> Assessor:
    """Each question asked of ``engine`` as a user would ask it."""
    lexicon_words = engine.lexicon.vocabulary()
    return lambda question: assess(question, engine.chat(question), lexicon_words)


def answerable_passages(engine: Engine) -> tuple[list[Passage], np.ndarray]:
    """Every chunk that can answer (reference lists are citations, not content), with its unit vector."""
    passages, vectors = [], []
    for sc in engine.snapshot.chunks:
        if not sc.chunk.is_reference:
            ch = sc.chunk
            passages.append(Passage(sc.chunk_id, ch.article_id, ch.section_label, ch.text))
            vectors.append(sc.embedding)
    dim = len(engine.snapshot.chunks[0].embedding) if engine.snapshot.chunks else 1
    return passages, unit_rows(np.asarray(vectors, dtype=np.float32).reshape(-1, dim))


def file_asks(questions: Sequence[str], assessor: Assessor, threshold: float, margin: float
              ) -> tuple[list[Ask], dict[str, int]]:
    """The gap questions of a questions file, asked of the current index once each; one ask per line."""
    counts: dict[str, int] = {}
    first: dict[str, str] = {}
    for q in questions:
        counts[question_key(q)] = counts.get(question_key(q), 0) + 1
        first.setdefault(question_key(q), q)
    asks: list[Ask] = []
    declined = low = 0
    for key, q in first.items():
        a = assessor(q)
        if model.is_gap(not a.answered, a.confidence, threshold, margin):
            declined += counts[key] if not a.answered else 0
            low += counts[key] if a.answered else 0
            asks += [Ask(q, key, None, "file", not a.answered, a.confidence)] * counts[key]
    return asks, {"questions": len(questions), "distinct": len(first), "declined": declined, "low_confidence": low}


def build_gaps(
    engine: Engine,
    log_rows: Iterable[Mapping[str, Any]] | None,
    file_questions: Sequence[str] | None = None,
    questions_file: Path | None = None,
    *,
    encode: Encoder | None = None,
    assessor: Assessor | None = None,
    data_dir: Path | None = None,
    now: datetime | None = None,
    rules: GapRules | None = None,
) -> GapReport:
    """``log_rows`` is None when the query log is unreadable. ``encode`` embeds a batch of questions and
    ``assessor`` asks one of the engine; a live server passes ones that remember. Without ``data_dir``
    there are no marks, and cluster ids are not remembered for the next report."""
    now = now or datetime.now(UTC)
    rules = rules or GapRules()
    version = engine.snapshot.version
    threshold, margin = float(engine.calibration.threshold), model.LOW_CONFIDENCE_MARGIN
    remembered: dict[str, Assessment] = {}
    ask_engine = assessor or chat_assessor(engine)

    def assessed(question: str) -> Assessment:
        key = question_key(question)
        if key not in remembered:
            remembered[key] = ask_engine(question)
        return remembered[key]

    logged, stats = asks_from_log(log_rows or [], threshold, margin)
    from_file, file_stats = file_asks(file_questions, assessed, threshold, margin) if file_questions is not None \
        else ([], None)

    # Embedded most-asked first: past model.MAX_LINKED questions, clustering links these and attaches the rest.
    groups = group_asks(logged + from_file)
    keys = sorted(groups, key=lambda k: -len(groups[k]))
    vectors = unit_rows((encode or engine.encode_many)([groups[k][0].question for k in keys])) if keys \
        else np.zeros((0, 1), dtype=np.float32)
    vec = {k: vectors[i] for i, k in enumerate(keys)}

    def near_duplicate(a: str, b: str) -> bool:
        return float(vec[a] @ vec[b]) >= NEAR_DUPLICATE_COS

    kept = collapse_repeats(logged, near_duplicate)
    questions = []
    for key, asks in group_asks(kept + from_file).items():
        a = assessed(asks[0].question)
        questions.append(AskedQuestion(asks[0].question, key, tuple(asks), a, classify(a, rules)))

    marks = read_marks(data_dir) if data_dir is not None else {}
    previous = read_registry(data_dir) if data_dir is not None else {}
    clusters, registry = _clusters([q for q in questions if q.gap_class in WRITE_NEXT], vec, engine, marks,
                                   previous, now)
    if data_dir is not None:
        # Marked clusters stay known while absent (a pruned log), so their marks return with their questions.
        write_registry(data_dir, {**{cid: previous[cid] for cid in marks if cid in previous}, **registry})

    tallies = [ClassTally(gap_class=c, label=CLASS_LABELS[c], questions=sum(q.gap_class == c for q in questions),
                          asked=sum(q.asked for q in questions if q.gap_class == c)) for c in GAP_CLASSES]
    return GapReport(
        generated_at=iso(now) or "", index_version=version,
        log=LogSummary(available=log_rows is not None, empty=stats.logged == 0, logged=stats.logged,
                       declined=stats.declined, low_confidence=stats.low_confidence,
                       repeats=len(logged) - len(kept)),
        file=FileSummary(path=str(questions_file) if questions_file else None, **file_stats) if file_stats else None,
        questions=len(questions), asked=sum(q.asked for q in questions), classes=tallies, clusters=clusters,
        off_topic=ranked_rows([q for q in questions if q.gap_class == "off_topic"]),
        abuse=ranked_rows([q for q in questions if q.gap_class == "abuse"]),
        rules=GapRulesInfo(gap_confidence_below=round(threshold + margin, 4), related_min=rules.related_min,
                           touched_min=rules.touched_min, cluster_distance=model.CLUSTER_DISTANCE,
                           repeat_window_minutes=REPEAT_WINDOW.total_seconds() / 60, closure_sample=CLOSURE_SAMPLE),
    )


def _clusters(
    questions: list[AskedQuestion], vec: Mapping[str, np.ndarray], engine: Engine, marks: Mapping[str, Mark],
    previous: Mapping[str, frozenset[str]], now: datetime,
) -> tuple[list[GapCluster], dict[str, frozenset[str]]]:
    if not questions:
        return [], {}
    questions = sorted(questions, key=lambda q: -q.asked)  # the most asked are linked first (MAX_LINKED)
    vectors = np.stack([vec[q.key] for q in questions])
    members: dict[int, list[int]] = {}
    for i, label in enumerate(model.cluster_labels(vectors)):
        members.setdefault(label, []).append(i)
    groups = list(members.values())

    def first_asked(q: AskedQuestion) -> tuple[bool, datetime, str]:
        times = [a.at for a in q.asks if a.at is not None]
        return (not times, min(times) if times else now, q.key)

    ids = assign_ids([ClusterKeys(frozenset(questions[i].key for i in g),
                                  min((questions[i] for i in g), key=first_asked).key) for g in groups], previous)
    passages, passage_vecs = answerable_passages(engine)
    titles = {aid: a.title or aid for aid, a in engine.snapshot.manifest.articles.items()}
    out = []
    for cid, g in zip(ids, groups, strict=True):
        group = [questions[i] for i in g]
        sample = [q.assessment for q in closure_sample(group)]
        out.append(make_cluster(
            cid, group, vectors[g], now, nearest_section(vectors[g], passages, passage_vecs, titles),
            marks.get(cid), closure(marks.get(cid), engine.snapshot.version, sample, titles),
        ))
    return rank(out), {cid: frozenset(questions[i].key for i in g) for cid, g in zip(ids, groups, strict=True)}
