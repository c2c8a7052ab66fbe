"""Grid search of retrieval and answering parameters on the **dev** split (never the test split).

    python -m evals.tune retrieval               # fusion, weights
    python -m evals.tune answering               # selection thresholds and budgets
    python -m evals.tune ranking [OUT.json]      # fit the chunk-ranking weights (default artifacts/ranking.json)
    python -m evals.tune selection [OUT.json]    # fit the unit-selection weights (default artifacts/selection.json)

Fit in this order: ranking on the tuned retrieval, then selection (one of its features is the chunk's
rank), then the answering budgets.

Prints one line per setting, best last; the chosen values become the defaults in
service/answering/retrieval.py (RetrievalParams) and service/answering/compose.py (AnswerParams).
"""

from __future__ import annotations

import itertools
import json
import sys
from dataclasses import replace
from pathlib import Path

from evals.dataset import load_items
from evals.harness import aggregate, gold_spans, run_stride
from evals.scoring import Passage, evidence_run, gold_ranks, retrieval_metrics
from ingest.corpus import raw_texts
from ingest.settings import Settings, load_settings
from service.answering.answerer import ExtractiveAnswerer
from service.answering.engine import Engine
from service.answering.query import Turn
from service.answering.ranking import RANKING_FEATURES, RankingModel
from service.answering.rerank import SentenceReranker
from service.answering.retrieval import RetrievalParams
from service.answering.selection import FEATURES, SelectionModel


def tune_retrieval(engine: Engine) -> None:
    items = [i for i in load_items("dev") if i.answerable]
    texts = {aid: a.text for aid, a in engine.articles().items()}
    golds = {i.id: gold_spans(i, texts) for i in items}
    results = []
    grid = itertools.product(["weighted", "rrf"], [0.3, 0.45, 0.6, 0.75, 0.9], [0.0, 0.25, 0.5, 1.0, 2.0])
    for fusion, dw, sw in grid:
        if fusion == "rrf" and dw != 0.6:
            continue
        trial = engine.with_parts(retrieval=RetrievalParams(fusion=fusion, dense_weight=dw, sentence_weight=sw),
                                  reranker=SentenceReranker(sw))
        runs, qrels, ranks = {}, {}, {}
        for item in items:
            _, _, hits = trial.retrieve(item.question, [Turn(r, c) for r, c in item.history], 10, answerable_only=True)
            passages = [Passage(h.chunk_id, h.chunk.article_id, h.chunk.start, h.chunk.end) for h in hits]
            runs[item.id] = evidence_run(passages, golds[item.id])
            qrels[item.id] = {f"gold{i}": 1 for i in range(len(golds[item.id]))}
            ranks[item.id] = gold_ranks(passages, golds[item.id])
        m = retrieval_metrics(runs, qrels, ranks)
        results.append((m["mrr@10"] + m["recall@5"], fusion, dw, sw, m))
    for _, fusion, dw, sw, m in sorted(results, key=lambda r: r[0])[-12:]:
        print(f"{fusion:8} dense={dw:<5} sentence={sw:<5} " + " ".join(f"{k}={v:.3f}" for k, v in m.items()))


def tune_answering(engine: Engine, settings: Settings) -> None:
    items = load_items("dev")
    raw = raw_texts(settings.corpus_dir, settings.max_file_bytes)
    base = engine.answering
    model = SelectionModel.load()
    results = []
    # chunks_considered stays at its tuned 4, to keep the grid to a few minutes
    grid = itertools.product([0.5, 0.6, 0.7], [0.1, 0.25], [4], [90, 100, 110], [110, 130], [4], [0.0, 0.5, 1.0, 2.0])
    for keep, floor, units, words, set_words, chunks, coverage in grid:
        params = replace(base, keep_ratio=keep, min_probability=floor, max_units=units, max_words=words,
                         set_words=set_words, chunks_considered=chunks, coverage=coverage)
        m = aggregate(run_stride(engine.with_parts(answerer=ExtractiveAnswerer(params, model)), items, raw))
        # Completeness first (the product's promise), within the 90-word mean the answers must keep to.
        key = m["fact_coverage"] + 0.1 * m["citations"]["citation_recall"] - (1.0 if m["answer_words"] > 88 else 0.0)
        results.append((key, params, m))
    for _, p, m in sorted(results, key=lambda r: r[0])[-10:]:
        print(f"keep={p.keep_ratio} floor={p.min_probability} units={p.max_units} words={p.max_words} "
              f"set_words={p.set_words} "
              f"chunks={p.chunks_considered} coverage={p.coverage} facts={m['fact_coverage']:.3f} "
              f"words={m['answer_words']:.1f} "
              f"crec={m['citations']['citation_recall']:.3f} hygiene={m['hygiene_defects']}")


def fit(engine: Engine, what: str, out: Path) -> None:
    from evals.rank_fit import fit_ranking
    from evals.select_fit import fit_selection

    fitter = fit_ranking if what == "ranking" else fit_selection
    _, summary = fitter(engine, load_items("dev"))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(summary, indent=1) + "\n", encoding="utf-8")
    print(json.dumps({k: v for k, v in summary.items() if k not in ("coef", "features", "mean", "scale")}))
    print(f"wrote {out}; ship it by copying it to service/answering/{what}.json and committing")


def main() -> None:
    settings = load_settings()
    what = sys.argv[1] if len(sys.argv) > 1 else "retrieval"
    # Fitting the selection or ranking weights must not need the weights it replaces (they may be stale).
    neutral = SelectionModel(tuple(0.0 for _ in FEATURES), 0.0, "neutral") if what == "selection" else None
    zeros = tuple(0.0 for _ in RANKING_FEATURES)
    unranked = RankingModel(zeros, tuple(1.0 for _ in zeros), zeros, 0.0, "neutral") if what == "ranking" else None
    engine = Engine.load(settings, selection=neutral, ranking=unranked)
    if what == "retrieval":
        tune_retrieval(engine)
    elif what in ("selection", "ranking"):
        fit(engine, what, Path(sys.argv[2]) if len(sys.argv) > 2 else Path(f"artifacts/{what}.json"))
    else:
        tune_answering(engine, settings)


if __name__ == "__main__":
    main()
