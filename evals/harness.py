"""Run Stride and the LangChain baseline over the same questions; per-question rows and metrics."""

from __future__ import annotations

import statistics
import time
from typing import Any

from evals.baseline import HybridTopChunkBaseline, LangChainBaseline
from evals.dataset import Item
from evals.scoring import (
    FAILURE_CLASSES,
    Passage,
    answer_words,
    cited_sentence_share,
    evidence_run,
    fact_coverage,
    failure_class,
    gold_ranks,
    hygiene_defects,
    locate,
    normalise_text,
    overlaps,
    percentile,
    prf,
    retrieval_metrics,
)
from ingest.embedding import SentenceEmbeddings
from service.answering.engine import ChatResult, Engine
from service.answering.query import Turn


def _missing_facts(answer: str, facts: tuple[tuple[str, ...], ...]) -> list[str]:
    text = normalise_text(answer)
    return [" / ".join(g) for g in facts if not any(normalise_text(a) in text for a in g)]


def gold_spans(item: Item, texts: dict[str, str]) -> list[tuple[str, int, int]]:
    """Where each of ``item``'s evidence texts stands in ``texts`` (article id -> text), as article spans."""
    spans: list[tuple[str, int, int]] = []
    for ev in item.evidence:
        loc = locate(texts.get(ev.article_id, ""), ev.text)
        if loc:
            spans.append((ev.article_id, *loc))
    return spans


def stride_row(
    item: Item, result: ChatResult, engine: Engine, raw: dict[str, str], latency_ms: float
) -> dict[str, Any]:
    texts = {aid: a.text for aid, a in engine.articles().items()}
    gold = gold_spans(item, texts)
    passages = [Passage(h.chunk_id, h.chunk.article_id, h.chunk.start, h.chunk.end) for h in result.hits[:10]]
    citations = []
    for c in result.citations:
        art = texts.get(c.article_id, "")
        verbatim = art[c.start : c.end] == c.quote and c.quote in raw.get(c.article_id, "")
        on_gold = any(aid == c.article_id and overlaps((c.start, c.end), (gs, ge)) for aid, gs, ge in gold)
        citations.append({"n": c.n, "article_id": c.article_id, "section": c.section, "quote": c.quote,
                          "start": c.start, "end": c.end, "verbatim": verbatim, "on_gold": on_gold})
    gold_cited = sum(
        any(c.article_id == aid and overlaps((c.start, c.end), (gs, ge)) for c in result.citations)
        for aid, gs, ge in gold
    )
    cov = fact_coverage(result.answer, item.key_facts) if item.answerable and not result.abstained else 0.0
    row = {
        "id": item.id, "split": item.split, "kind": item.kind, "question": item.question,
        "history": [list(t) for t in item.history], "answerable": item.answerable,
        "gold_answer": item.gold_answer, "answer": result.answer, "abstained": result.abstained,
        "decline_reason": result.provenance.decline_reason,
        "confidence": result.provenance.confidence,
        "words": answer_words(result.answer) if not result.abstained else 0,
        "fact_coverage": cov,
        "missing_facts": _missing_facts(result.answer, item.key_facts) if item.answerable else [],
        "citations": citations, "gold_found": len(gold), "gold_total": len(item.evidence), "gold_cited": gold_cited,
        "cited_share": cited_sentence_share(result.answer) if not result.abstained else None,
        "run": evidence_run(passages, gold), "qrels": {f"gold{i}": 1 for i in range(len(gold))},
        "gold_ranks": gold_ranks(passages, gold),
        "retrieved": [{"chunk_id": h.chunk_id, "article_id": h.chunk.article_id, "section": h.chunk.section_label,
                       "score": round(h.score, 4), "text": h.chunk.text} for h in result.hits[:5]],
        "answer_type": result.provenance.query.answer_type if result.provenance.query else None,
        "defects": [] if result.abstained else hygiene_defects(result.answer, [c.section for c in result.citations]),
        "latency_ms": latency_ms,
    }
    row["failure"] = failure_class(row)
    return row


def baseline_row(item: Item, baseline: LangChainBaseline | HybridTopChunkBaseline) -> dict[str, Any]:
    gold = gold_spans(item, baseline.texts)
    res = baseline.ask(item.question, [Turn(r, c) for r, c in item.history])
    passages = [Passage(doc, aid, s, e) for doc, aid, s, e in res.passages]
    top = passages[0] if passages else None
    on_gold = bool(top) and any(
        aid == top.article_id and overlaps((top.start, top.end), (gs, ge)) for aid, gs, ge in gold  # type: ignore[union-attr]
    )
    cited = sum(bool(top) and aid == top.article_id and overlaps((top.start, top.end), (gs, ge)) > 0  # type: ignore[union-attr]
                for aid, gs, ge in gold)
    return {
        "id": item.id, "kind": item.kind, "answer": res.answer, "abstained": False, "words": answer_words(res.answer),
        "defects": hygiene_defects(res.answer, []) if item.answerable else [],
        "fact_coverage": fact_coverage(res.answer, item.key_facts) if item.answerable else 0.0,
        "citations": [{"verbatim": True, "on_gold": on_gold}] if top else [],
        "gold_found": len(gold), "gold_cited": cited, "cited_share": 1.0 if top else 0.0,
        "run": evidence_run(passages, gold), "qrels": {f"gold{i}": 1 for i in range(len(gold))},
        "gold_ranks": gold_ranks(passages, gold),
        "answerable": item.answerable, "latency_ms": res.latency_ms,
    }


def aggregate(rows: list[dict[str, Any]]) -> dict[str, Any]:
    answerable = [r for r in rows if r["answerable"]]
    answered = [r for r in answerable if not r["abstained"]]
    with_gold = [r for r in answerable if r["gold_found"]]
    cites = [c for r in answered for c in r["citations"]]
    tp = sum(1 for r in rows if not r["answerable"] and r["abstained"])
    fp = sum(1 for r in rows if r["answerable"] and r["abstained"])
    fn = sum(1 for r in rows if not r["answerable"] and not r["abstained"])
    lat = [r["latency_ms"] for r in rows]
    adjacent = [r for r in rows if r.get("kind") == "adjacent"]
    mean = statistics.fmean
    return {
        "n_questions": len(rows),
        "n_answerable": len(answerable),
        "retrieval": retrieval_metrics(
            {r["id"]: r["run"] for r in with_gold}, {r["id"]: r["qrels"] for r in with_gold},
            {r["id"]: r["gold_ranks"] for r in with_gold},
        ),
        "fact_coverage": mean([r["fact_coverage"] for r in answerable]) if answerable else 0.0,
        "fact_all": mean([r["fact_coverage"] == 1.0 for r in answerable]) if answerable else 0.0,
        "answer_words": mean([r["words"] for r in answered]) if answered else 0.0,
        "false_declines": fp,
        "false_decline_rate": fp / len(answerable) if answerable else 0.0,
        "citations": {
            "quote_verbatim": mean([c["verbatim"] for c in cites]) if cites else 0.0,
            "quote_precision": mean([c["verbatim"] and c["on_gold"] for c in cites]) if cites else 0.0,
            "citation_recall": (sum(r["gold_cited"] for r in with_gold) / sum(r["gold_found"] for r in with_gold))
            if with_gold
            else 0.0,
            "cited_sentence_share": mean([r["cited_share"] for r in answered]) if answered else 0.0,
        },
        "abstain": prf(tp, fp, fn),
        "adjacent_declined": mean([r["abstained"] for r in adjacent]) if adjacent else 0.0,
        "hygiene_defects": sum(bool(r.get("defects")) for r in answered),
        "failures": {c: sum(r.get("failure") == c for r in rows) for c in FAILURE_CLASSES},
        "latency_ms": {"p50": percentile(lat, 50), "p95": percentile(lat, 95)},
    }


def run_stride(engine: Engine, items: list[Item], raw: dict[str, str]) -> list[dict[str, Any]]:
    rows = []
    engine.chat("warm up")
    engine.clear_query_cache()  # time every question with its own embedding, not a cached one
    for item in items:
        history = [Turn(role, content) for role, content in item.history]
        started = time.perf_counter()
        result = engine.chat(item.question, history)
        rows.append(stride_row(item, result, engine, raw, (time.perf_counter() - started) * 1000))
    return rows


def evaluate(
    engine: Engine, items: list[Item], raw: dict[str, str],
    baseline_embeddings: SentenceEmbeddings | None = None,
) -> dict[str, Any]:
    """Stride over ``items`` and, given the embedder to share, the baseline; one JSON-ready dict.
    ``raw`` is each article's text as read, which quotes must be verbatim in."""
    rows = run_stride(engine, items, raw)
    out: dict[str, Any] = {"n_questions": len(items), **aggregate(rows), "rows": rows}
    hybrid = HybridTopChunkBaseline(engine)
    hrows = [baseline_row(i, hybrid) for i in items]
    out["baseline_hybrid"] = {**aggregate(hrows), "name": hybrid.name, "rows": hrows}
    if baseline_embeddings is not None:
        baseline = LangChainBaseline(raw, baseline_embeddings)
        brows = [baseline_row(i, baseline) for i in items]
        out["baseline"] = {
            **aggregate(brows),
            "name": "LangChain RecursiveCharacterTextSplitter(1000,200) + Chroma top-k",
            "rows": brows,
        }
    return out
