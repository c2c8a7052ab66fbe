"""SQuAD-2-style abstention calibration on the dev split.

Every dev question is answered with abstention switched off, recording the confidence. Then each
candidate threshold (and coverage weight) is scored as if the service had declined below it:
an answerable question earns its key-fact coverage when answered and 0 when declined; an
unanswerable one earns 1 when declined. The caller decides where the fitted values are written.
"""

from __future__ import annotations

import itertools
import time
from typing import Any

from evals.dataset import Item
from evals.harness import run_stride
from evals.scoring import prf
from service.answering.abstain import Calibration, subject_unnamed
from service.answering.engine import Engine
from service.answering.query import Turn

COVERAGE_WEIGHTS = (0.0, 0.15, 0.3, 0.5)
FOCUS_WEIGHTS = (0.0, 0.1, 0.2, 0.3, 0.45)
SUBJECT_WEIGHTS = (0.0, 0.2, 0.4, 0.6)


def score_threshold(rows: list[dict[str, Any]], threshold: float) -> tuple[float, dict[str, float]]:
    """The mean per-question objective and the abstention P/R/F1 if declining below ``threshold``."""
    total, tp, fp, fn = 0.0, 0, 0, 0
    for r in rows:
        declined = r["guarded"] or r["confidence"] < threshold
        if r["answerable"]:
            total += 0.0 if declined else r["fact_coverage"]
            fp += declined
        else:
            total += 1.0 if declined else 0.0
            tp += declined
            fn += not declined
    return total / len(rows), prf(tp, fp, fn)


def fit_calibration(engine: Engine, items: list[Item], raw: dict[str, str]) -> tuple[Calibration, dict[str, Any]]:
    """The best (threshold, coverage, focus and subject weights) on ``items`` and a JSON summary to write beside it."""
    if any(i.split != "dev" for i in items):
        raise ValueError("calibration is fitted on the dev split only; test questions would leak into the threshold")
    index = engine.search_index
    # The subject term is a constant step in a question's confidence, so each weight needs no run of its own.
    unnamed = {i.id: subject_unnamed(engine.retrieve(i.question, [Turn(r, c) for r, c in i.history], 1)[0],
                                     index.mentions, index.discussed_concepts) for i in items}
    best: dict[str, Any] | None = None
    for weight, focus in itertools.product(COVERAGE_WEIGHTS, FOCUS_WEIGHTS):
        sweep = engine.with_parts(calibration=Calibration(float("-inf"), weight, "sweep", focus))
        answered = run_stride(sweep, items, raw)
        for subject in SUBJECT_WEIGHTS:
            rows = [
                {"answerable": r["answerable"], "fact_coverage": r["fact_coverage"],
                 "guarded": r["decline_reason"] == "out_of_scope",
                 "confidence": r["confidence"] - subject * unnamed[r["id"]] if r["confidence"] is not None
                 else float("-inf")}
                for r in answered
            ]
            candidates = sorted({r["confidence"] for r in rows if r["confidence"] != float("-inf")})
            # Thresholds halfway between neighbouring confidences generalise better than the values.
            thresholds = [(a + b) / 2 for a, b in itertools.pairwise(candidates)] or candidates
            for t in thresholds:
                objective, abstain = score_threshold(rows, t)
                key = (objective, abstain["f1"], -abs(t - 0.45), -subject)
                if best is None or key > best["_key"]:
                    best = {"_key": key, "threshold": round(t, 4), "coverage_weight": weight, "focus_weight": focus,
                            "subject_weight": subject, "objective": round(objective, 4),
                            "abstain_f1": round(abstain["f1"], 4)}
    assert best is not None, "no questions to calibrate on"
    best.pop("_key")
    fitted_on = f"dev ({len(items)} questions)"
    summary = {**best, "fitted_on": fitted_on, "fitted_at": time.strftime("%Y-%m-%d")}
    fitted = Calibration(best["threshold"], best["coverage_weight"], f"fitted now ({fitted_on})", best["focus_weight"],
                         best["subject_weight"])
    return fitted, summary
