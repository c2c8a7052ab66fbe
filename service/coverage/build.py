"""Gather the coverage report's inputs from an Engine, the query log and an optional questions file,
and run the computations in ``model`` (the gaps: ``gap_build``). ``write_coverage`` is the entry point
for the CLI."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ingest.errors import StrideError
from service.coverage import model
from service.coverage.gap_build import answerable_passages, build_gaps
from service.coverage.model import Passage, Sentence, Topic, unit_rows

if TYPE_CHECKING:
    from ingest.records import ArticleRecord, ManifestArticle
    from ingest.settings import Settings
    from service.answering.engine import Engine

QUESTION_SUFFIXES = (".txt", ".json", ".jsonl")


class QuestionsFileInvalid(StrideError):
    pass


@dataclass(frozen=True)
class EvalQuestion:
    """A known question and the articles that answer it; the CLI passes the eval set in."""

    id: str
    question: str
    split: str
    answerable: bool
    article_ids: tuple[str, ...]


# --- questions file ----------------------------------------------------------------------------

def read_questions_file(path: Path) -> list[str]:
    """Questions from a .txt (one per line; blank lines and # comments skipped), a .json (a list of
    objects with "question", or of strings) or a .jsonl (one object with "question" per line)."""
    fix = "pass a .txt with one question per line, or .json/.jsonl with \"question\" fields"
    if not path.is_file():
        raise QuestionsFileInvalid(f"questions file {path} not found — {fix}")
    if path.suffix.lower() not in QUESTION_SUFFIXES:
        raise QuestionsFileInvalid(f"questions file {path} has an unknown type {path.suffix!r} — {fix}")
    try:
        raw = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise QuestionsFileInvalid(f"questions file {path} is not UTF-8 text — save it as UTF-8") from err
    suffix = path.suffix.lower()
    if suffix == ".txt":
        questions = [line.strip() for line in raw.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    elif suffix == ".json":
        try:
            data = json.loads(raw) if raw.strip() else []
        except json.JSONDecodeError as err:
            raise QuestionsFileInvalid(
                f"questions file {path} is not valid JSON (line {err.lineno}: {err.msg}) — fix it or use a .txt"
            ) from err
        if isinstance(data, Mapping) and isinstance(data.get("questions"), list):
            data = data["questions"]
        if not isinstance(data, list):
            raise QuestionsFileInvalid(f"questions file {path} must hold a JSON list of {{\"question\": ...}} objects")
        questions = [_question_of(item, path, f"item {i}") for i, item in enumerate(data, 1)]
    else:
        questions = []
        for n, line in enumerate(raw.splitlines(), 1):
            if not line.strip():
                continue
            try:
                item = json.loads(line)
            except json.JSONDecodeError as err:
                raise QuestionsFileInvalid(
                    f"questions file {path}: line {n} is not valid JSON ({err.msg}) — one JSON object per line"
                ) from err
            questions.append(_question_of(item, path, f"line {n}"))
    if not questions:
        raise QuestionsFileInvalid(f"questions file {path} has no questions — {fix}")
    return questions


def _question_of(item: Any, path: Path, where: str) -> str:
    text = item.get("question") if isinstance(item, Mapping) else item
    if not isinstance(text, str) or not text.strip():
        raise QuestionsFileInvalid(f"questions file {path}: {where} has no \"question\" text — add one or remove it")
    return text.strip()


# --- topics and passages -----------------------------------------------------------------------

def topic_probe(label: str, terms: Iterable[str]) -> str:
    """What a topic is embedded as: its label and lay/anatomical terms, as the lexicon lists them."""
    return f"{label}: " + ", ".join(terms)


def gather_topics(engine: Engine) -> tuple[list[Topic], np.ndarray]:
    concepts = engine.lexicon.concepts
    topics = [Topic(c.id, c.label, c.kind) for c in concepts]
    vectors = (
        np.stack([engine.encode(topic_probe(c.label, c.terms)) for c in concepts]) if concepts else np.zeros((0, 1))
    )
    return topics, unit_rows(vectors)


def gather_passages(
    engine: Engine, topics: list[Topic]
) -> tuple[list[Passage], list[list[tuple[str, ...]]], np.ndarray]:
    """Every answerable chunk (reference lists are citations, not content), the lexicon terms of each
    topic found in its section trail and text (a heading like "Benefits of Running for Hamstrings"
    makes the whole passage about hamstrings), and its vector."""
    order = {t.id: i for i, t in enumerate(topics)}
    passages, vectors = answerable_passages(engine)
    chunks = {sc.chunk_id: sc.chunk for sc in engine.snapshot.chunks}
    terms = []
    for p in passages:
        found: list[set[str]] = [set() for _ in topics]
        for term, concept in engine.lexicon.find(chunks[p.chunk_id].embedding_text()):
            if concept.id in order:
                found[order[concept.id]].add(term)
        terms.append([tuple(sorted(f)) for f in found])
    return passages, terms, vectors


def gather_sentences(engine: Engine, batch: int = 500) -> tuple[list[Sentence], np.ndarray]:
    index = engine.search_index
    sentences, vectors = [], []
    for start in range(0, len(index.chunks), batch):  # sentence vectors are read from the index in batches
        rows = range(start, min(start + batch, len(index.chunks)))
        vecs = index.sentence_vectors_of(rows)
        for ci in rows:
            sc = index.chunks[ci]
            ch = sc.chunk
            for (a, b), vec in zip(ch.sentences, vecs[ci], strict=False):
                sentences.append(Sentence(ch.article_id, sc.chunk_id, ch.section_label, ch.text[a:b].strip()))
                vectors.append(vec)
    dim = len(index.chunks[0].embedding) if index.chunks else 1
    return sentences, unit_rows(np.asarray(vectors, dtype=np.float32).reshape(-1, dim))


# --- the whole report --------------------------------------------------------------------------

def build_index_view(engine: Engine, eval_questions: Sequence[EvalQuestion] = ()) -> dict[str, Any]:
    """The parts of the report that depend only on the index (and the eval set): topics, the topic ×
    article matrix, overlaps, articles and planted text. A live server keeps this per index version."""
    snap = engine.snapshot
    manifest_articles = snap.manifest.articles
    article_ids = list(manifest_articles)

    topics, topic_vecs = gather_topics(engine)
    passages, terms, passage_vecs = gather_passages(engine, topics)
    cosines = passage_vecs @ topic_vecs.T if len(passages) and len(topics) else np.zeros((len(passages), len(topics)))
    cells = model.topic_matrix(topics, article_ids, passages, terms, cosines)

    sentences, sentence_vecs = gather_sentences(engine)
    overlaps = model.find_overlaps(sentences, sentence_vecs)
    threshold = float(engine.calibration.threshold)
    return {
        "index": {"version": snap.version, "model": snap.model, "built_at": snap.manifest.built_at},
        "thresholds": {
            "topic_semantic_min": model.TOPIC_SEMANTIC_MIN,
            "abstain_threshold": threshold,
            "low_confidence_margin": model.LOW_CONFIDENCE_MARGIN,
            "gap_confidence_below": round(threshold + model.LOW_CONFIDENCE_MARGIN, 4),
            "cluster_distance": model.CLUSTER_DISTANCE,
            "overlap_min_cosine": model.OVERLAP_MIN_COS,
            "overlap_min_chars": model.OVERLAP_MIN_CHARS,
        },
        "topics": [
            {"id": t.id, "label": t.label, "kind": t.kind,
             "articles": sum(1 for a in article_ids if cells[(t.id, a)].passages),
             "passages": sum(cells[(t.id, a)].passages for a in article_ids)}
            for t in topics
        ],
        "articles": [_article(aid, manifest_articles[aid], snap.articles.get(aid), engine, eval_questions)
                     for aid in article_ids],
        "cells": [
            {"topic": c.topic_id, "article": c.article_id, "passages": c.passages, "chars": c.chars, "share": c.share,
             "matches": [{"chunk_id": m.chunk_id, "terms": list(m.terms), "cosine": m.cosine, "how": m.how}
                         for m in c.matches]}
            for c in cells.values()
        ],
        "passages": {p.chunk_id: {"article_id": p.article_id, "section": p.section, "text": p.text} for p in passages},
        "uncovered_topics": model.uncovered_topics(topics, cells, article_ids),
        "overlap": {"pairs": overlaps, "by_article_pair": model.overlap_by_article_pair(overlaps)},
        # Instruction-like text found at ingest: never used in answers, listed so someone removes it.
        "planted": [{"article_id": aid, "file": rec.file, "line": p.line, "rule": p.rule, "text": p.text}
                    for aid, rec in sorted(snap.articles.items()) for p in rec.planted],
        "eval_set": {"found": bool(eval_questions), "questions": len(eval_questions),
                     "unanswerable": sum(1 for e in eval_questions if not e.answerable)},
    }


def build_coverage(
    engine: Engine,
    log_rows: Iterable[Mapping[str, Any]] | None,
    file_questions: list[str] | None = None,
    questions_file: Path | None = None,
    eval_questions: Sequence[EvalQuestion] = (),
    data_dir: Path | None = None,
) -> dict[str, Any]:
    """The report's data, JSON-serialisable. ``log_rows`` is None when the query log is unavailable;
    ``data_dir`` holds the gap clusters' marks and ids (none without it)."""
    gaps = build_gaps(engine, log_rows, file_questions, questions_file, data_dir=data_dir)
    return {
        "generated_at": gaps.generated_at,
        **build_index_view(engine, eval_questions),
        "gaps": gaps.model_dump(mode="json"),
    }


def _article(aid: str, entry: ManifestArticle, record: ArticleRecord | None, engine: Engine,
             evals: Sequence[EvalQuestion]) -> dict[str, Any]:
    chunks = [sc.chunk for sc in engine.snapshot.chunks if sc.chunk.article_id == aid]
    per_section: dict[tuple[str, ...], int] = {}
    for ch in chunks:
        per_section[tuple(ch.section)] = per_section.get(tuple(ch.section), 0) + 1
    sections = []
    if per_section.get(()):  # text before the first heading
        sections.append(
            {"path": [], "label": "(opening, before the first heading)", "level": 1, "chunks": per_section[()]}
        )
    for s in record.sections if record is not None else []:
        path = tuple(s.path)
        sections.append({"path": list(path), "label": " > ".join(path), "level": s.level,
                         "chunks": per_section.get(path, 0)})
    return {
        "id": aid,
        "title": entry.title or (record.title if record is not None else aid),
        "file": entry.file,
        "publisher": entry.publisher,
        "author": entry.author,
        "sha": entry.sha,
        "ingested_at": entry.ingested_at,
        "num_chunks": entry.num_chunks,
        "reference_chunks": sum(1 for ch in chunks if ch.is_reference),
        "chars": len(record.text) if record is not None else 0,
        "sections": sections,
        "eval_questions": [{"id": e.id, "question": e.question, "split": e.split}
                           for e in evals if aid in e.article_ids],
    }


def read_query_log(settings: Settings) -> list[dict[str, Any]] | None:
    """Every logged chat question, from the configured store (``STRIDE_DATABASE_URL`` or the SQLite file);
    [] when nothing was logged yet, None when the log is unreadable. Opened without retention, so making
    a report never prunes the log, and never created here."""
    from service.feedback.store import DatabaseUnavailable, open_existing

    try:
        store = open_existing(settings)
    except DatabaseUnavailable:
        return None
    if store is None:
        return []
    try:
        return list(store.iter_queries())
    finally:
        store.close()


def write_coverage(
    engine: Engine, settings: Settings, out_dir: Path, questions_file: Path | None,
    eval_questions: Sequence[EvalQuestion] = (),
) -> dict[str, Any]:
    """Build the report and write out_dir/report.html, coverage.json and coverage.csv (plus one CSV per
    other table). Reads the query log from ``settings.data_dir``. Raises QuestionsFileInvalid first,
    before any slow work, when the questions file is missing or malformed."""
    from service.coverage.render import write_outputs

    file_questions = read_questions_file(questions_file) if questions_file is not None else None
    data = build_coverage(engine, read_query_log(settings), file_questions, questions_file, eval_questions,
                          settings.data_dir)
    data["files"] = write_outputs(data, Path(out_dir))
    return data
