"""Gather the coverage report's inputs from an Engine, the query log and an optional questions file,
and run the computations in ``model``. ``write_coverage`` is the entry point for the CLI."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ingest.errors import StrideError
from service.coverage import model
from service.coverage.model import GapQuestion, Passage, Sentence, Topic

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


def _unit(rows: np.ndarray) -> np.ndarray:
    rows = np.asarray(rows, dtype=np.float32)
    norms = np.linalg.norm(rows, axis=-1, keepdims=True)
    return rows / np.where(norms == 0, 1.0, norms)


def gather_topics(engine: Engine) -> tuple[list[Topic], np.ndarray]:
    concepts = engine.lexicon.concepts
    topics = [Topic(c.id, c.label, c.kind) for c in concepts]
    vectors = (
        np.stack([engine.encode(topic_probe(c.label, c.terms)) for c in concepts]) if concepts else np.zeros((0, 1))
    )
    return topics, _unit(vectors)


def gather_passages(
    engine: Engine, topics: list[Topic]
) -> tuple[list[Passage], list[list[tuple[str, ...]]], np.ndarray]:
    """Every answerable chunk (reference lists are citations, not content), the lexicon terms of each
    topic found in its section trail and text (a heading like "Benefits of Running for Hamstrings"
    makes the whole passage about hamstrings), and its vector."""
    order = {t.id: i for i, t in enumerate(topics)}
    passages, terms, vectors = [], [], []
    for sc in engine.snapshot.chunks:
        ch = sc.chunk
        if ch.is_reference:
            continue
        found: list[set[str]] = [set() for _ in topics]
        for term, concept in engine.lexicon.find(ch.embedding_text()):
            if concept.id in order:
                found[order[concept.id]].add(term)
        passages.append(Passage(sc.chunk_id, ch.article_id, ch.section_label, ch.text))
        terms.append([tuple(sorted(f)) for f in found])
        vectors.append(sc.embedding)
    dim = len(engine.snapshot.chunks[0].embedding) if engine.snapshot.chunks else 1
    return passages, terms, _unit(np.asarray(vectors, dtype=np.float32).reshape(-1, dim))


def gather_sentences(engine: Engine) -> tuple[list[Sentence], np.ndarray]:
    sentences, vectors = [], []
    for sc in engine.snapshot.chunks:
        ch = sc.chunk
        for (a, b), vec in zip(ch.sentences, sc.sentence_embeddings, strict=False):
            sentences.append(Sentence(ch.article_id, sc.chunk_id, ch.section_label, ch.text[a:b].strip()))
            vectors.append(vec)
    dim = len(engine.snapshot.chunks[0].embedding) if engine.snapshot.chunks else 1
    return sentences, _unit(np.asarray(vectors, dtype=np.float32).reshape(-1, dim))


# --- gap questions -----------------------------------------------------------------------------

def _key(question: str) -> str:
    return re.sub(r"\s+", " ", question).strip().casefold()


def log_gaps(
    rows: Iterable[Mapping[str, Any]], threshold: float, margin: float
) -> tuple[list[GapQuestion], dict[str, int]]:
    """Gap questions from the query log, de-duplicated (count = times asked), with tallies. A decline
    without a confidence is the injection guard's out-of-scope reply: not a content gap."""
    stats = {"logged": 0, "declined": 0, "low_confidence": 0, "out_of_scope": 0}
    merged: dict[str, GapQuestion] = {}
    for r in rows:
        stats["logged"] += 1
        q, abstained, conf = str(r.get("question") or "").strip(), bool(r.get("abstained")), r.get("confidence")
        if not q:
            continue
        if abstained and conf is None:
            stats["out_of_scope"] += 1
            continue
        if not model.is_gap(abstained, conf, threshold, margin):
            continue
        stats["declined" if abstained else "low_confidence"] += 1
        prev = merged.get(_key(q))
        confs = [c for c in (prev.confidence if prev else None, conf) if c is not None]
        merged[_key(q)] = GapQuestion(
            prev.question if prev else q, "log", abstained or (prev is not None and prev.abstained),
            min(confs) if confs else None, (prev.count if prev else 0) + 1,
        )
    return list(merged.values()), stats


def file_gaps(
    engine: Engine, questions: list[str], threshold: float, margin: float
) -> tuple[list[GapQuestion], dict[str, int]]:
    """Run each distinct question through the engine, as a user would ask it, and keep the gaps."""
    counts: dict[str, int] = {}
    first: dict[str, str] = {}
    for q in questions:
        counts[_key(q)] = counts.get(_key(q), 0) + 1
        first.setdefault(_key(q), q)
    stats = {
        "questions": len(questions),
        "distinct": len(counts),
        "declined": 0,
        "low_confidence": 0,
        "out_of_scope": 0,
    }
    out = []
    for key, q in first.items():
        result = engine.chat(q)
        conf = result.provenance.confidence
        if result.abstained and conf is None:
            stats["out_of_scope"] += 1
            continue
        if model.is_gap(result.abstained, conf, threshold, margin):
            stats["declined" if result.abstained else "low_confidence"] += 1
            out.append(GapQuestion(q, "file", result.abstained, conf, counts[key]))
    return out, stats


def merge_gaps(*groups: list[GapQuestion]) -> list[GapQuestion]:
    """One entry per question across sources, so a question in the log and the file counts once per ask."""
    merged: dict[str, GapQuestion] = {}
    for group in groups:
        for g in group:
            prev = merged.get(_key(g.question))
            if prev is None:
                merged[_key(g.question)] = g
            else:
                confs = [c for c in (prev.confidence, g.confidence) if c is not None]
                merged[_key(g.question)] = GapQuestion(
                    prev.question, ", ".join(sorted({*prev.source.split(", "), g.source})),
                    prev.abstained or g.abstained, min(confs) if confs else None, prev.count + g.count,
                )
    return list(merged.values())


# --- the whole report --------------------------------------------------------------------------

Encoder = Callable[[list[str]], np.ndarray]


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


def build_gaps(
    engine: Engine,
    log_rows: Iterable[Mapping[str, Any]] | None,
    file_questions: list[str] | None = None,
    questions_file: Path | None = None,
    encode: Encoder | None = None,
) -> dict[str, Any]:
    """The gap questions and their clusters. ``encode`` embeds a batch of questions (unit rows); a live
    server passes one that remembers, so a new view embeds only the questions asked since the last."""
    threshold = float(engine.calibration.threshold)
    margin = model.LOW_CONFIDENCE_MARGIN
    log_list, log_stats = log_gaps(log_rows or [], threshold, margin)
    file_list: list[GapQuestion] = []
    file_stats: dict[str, Any] | None = None
    if file_questions is not None:
        file_list, file_stats = file_gaps(engine, file_questions, threshold, margin)
        file_stats = {"path": str(questions_file) if questions_file else None, **file_stats}
    # Most-asked first: past model.MAX_LINKED questions, clustering links these and attaches the rest.
    gaps = sorted(merge_gaps(log_list, file_list), key=lambda g: -g.count)
    embed = encode or engine.encode_many
    gap_vecs = _unit(embed([g.question for g in gaps])) if gaps else np.zeros((0, 1))
    return {
        "log": {"available": log_rows is not None, "empty": log_stats["logged"] == 0, **log_stats},
        "file": file_stats,
        "questions": len(gaps),
        "asked": sum(g.count for g in gaps),
        "clusters": model.rank_clusters(gaps, model.cluster_labels(gap_vecs), gap_vecs),
    }


def build_coverage(
    engine: Engine,
    log_rows: Iterable[Mapping[str, Any]] | None,
    file_questions: list[str] | None = None,
    questions_file: Path | None = None,
    eval_questions: Sequence[EvalQuestion] = (),
) -> dict[str, Any]:
    """The report's data, JSON-serialisable. ``log_rows`` is None when the query log is unavailable."""
    return {
        "generated_at": generated_at(),
        **build_index_view(engine, eval_questions),
        "gaps": build_gaps(engine, log_rows, file_questions, questions_file),
    }


def generated_at() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


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
    """Every logged chat question; [] when nothing was logged yet, None when the log is unreadable.
    Opened without retention, so making a report never prunes the log, and never created here."""
    import sqlite3

    from service.feedback.store import FILENAME, FeedbackStore

    path = Path(settings.data_dir) / FILENAME
    if not path.exists():
        return []
    try:
        store = FeedbackStore(path)
    except (OSError, sqlite3.Error):
        return None
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
    data = build_coverage(engine, read_query_log(settings), file_questions, questions_file, eval_questions)
    data["files"] = write_outputs(data, Path(out_dir))
    return data
