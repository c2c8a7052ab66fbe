"""Grid search of retrieval and answering parameters on the **dev** split (never the test split).

    python -m evals.tune retrieval     # fusion, weights
    python -m evals.tune answering     # sentence selection

Prints one line per setting, best last; the chosen values become the defaults in
service/answering/retrieval.py (RetrievalParams) and service/answering/compose.py (AnswerParams).
"""

from __future__ import annotations

import itertools
import sys
from dataclasses import replace

from evals.dataset import load_items
from evals.harness import aggregate, run_stride
from evals.scoring import Passage, evidence_run, locate, retrieval_metrics
from ingest.corpus import raw_texts
from ingest.settings import Settings
from service.answering.answerer import ExtractiveAnswerer
from service.answering.engine import Engine
from service.answering.query import Turn
from service.answering.rerank import SentenceReranker
from service.answering.retrieval import RetrievalParams


def tune_retrieval(engine: Engine) -> None:
    items = [i for i in load_items("dev") if i.answerable]
    texts = {aid: a.text for aid, a in engine.articles().items()}
    golds = {i.id: [(e.article_id, *loc) for e in i.evidence if (loc := locate(texts[e.article_id], e.text))]
             for i in items}
    results = []
    grid = itertools.product(["weighted", "rrf"], [0.3, 0.45, 0.6, 0.75, 0.9], [0.0, 0.25, 0.5, 1.0, 2.0])
    for fusion, dw, sw in grid:
        if fusion == "rrf" and dw != 0.6:
            continue
        trial = engine.with_parts(retrieval=RetrievalParams(fusion=fusion, dense_weight=dw, sentence_weight=sw),
                                  reranker=SentenceReranker(sw))
        runs, qrels = {}, {}
        for item in items:
            _, _, hits = trial.retrieve(item.question, [Turn(r, c) for r, c in item.history], 10, answerable_only=True)
            passages = [Passage(h.chunk_id, h.chunk.article_id, h.chunk.start, h.chunk.end) for h in hits]
            runs[item.id] = evidence_run(passages, golds[item.id])
            qrels[item.id] = {f"gold{i}": 1 for i in range(len(golds[item.id]))}
        m = retrieval_metrics(runs, qrels)
        results.append((m["mrr@10"] + m["recall@5"], fusion, dw, sw, m))
    for _, fusion, dw, sw, m in sorted(results, key=lambda r: r[0])[-12:]:
        print(f"{fusion:8} dense={dw:<5} sentence={sw:<5} " + " ".join(f"{k}={v:.3f}" for k, v in m.items()))


def tune_answering(engine: Engine, settings: Settings) -> None:
    items = load_items("dev")
    raw = raw_texts(settings.corpus_dir, settings.max_file_bytes)
    base = engine.answering
    results = []
    grid = itertools.product([0.8, 1.2], [0.25, 0.5], [0.1, 0.2, 0.35], [2, 3], [3, 4])
    for lw, rw, margin, units, window in grid:
        params = replace(base, lexical_weight=lw, rank_weight=rw, margin=margin, max_units=units, max_window=window,
                         max_words=85)
        m = aggregate(run_stride(engine.with_parts(answerer=ExtractiveAnswerer(params)), items, raw))
        # Completeness first (the product's promise), precision as the tie-breaker, within the word budget.
        key = m["fact_coverage"] + 0.25 * m["citations"]["quote_precision"] - (1.0 if m["answer_words"] > 85 else 0.0)
        results.append((key, lw, rw, margin, f"{units}/{window}", m))
    for _, lw, rw, margin, shape, m in sorted(results, key=lambda r: r[0])[-12:]:
        print(f"lex={lw:<4} rank={rw:<4} margin={margin:<5} units/window={shape} facts={m['fact_coverage']:.3f} "
              f"all={m['fact_all']:.3f} words={m['answer_words']:.1f} qprec={m['citations']['quote_precision']:.3f} "
              f"crec={m['citations']['citation_recall']:.3f} abstF1={m['abstain']['f1']:.3f}")


def main() -> None:
    settings = Settings()
    engine = Engine.load(settings)
    what = sys.argv[1] if len(sys.argv) > 1 else "retrieval"
    if what == "retrieval":
        tune_retrieval(engine)
    else:
        tune_answering(engine, settings)


if __name__ == "__main__":
    main()
