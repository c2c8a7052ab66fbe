"""SQuAD-2-style abstention calibration on the dev split.

Every dev question is answered with abstention switched off, recording the confidence. Then each
candidate threshold (and coverage weight) is scored as if the service had declined below it:
an answerable question earns its key-fact coverage when answered and 0 when declined; an
unanswerable one earns 1 when declined. The best setting is written to service/calibration.json.
"""

from __future__ import annotations

import json
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from evals.dataset import Item
from evals.scoring import prf
from service.abstain import CALIBRATION_FILE, Calibration
from service.engine import Engine

COVERAGE_WEIGHTS = (0.0, 0.15, 0.3, 0.5)


def _score(rows: list[dict[str, Any]], threshold: float) -> tuple[float, dict[str, float]]:
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


def calibrate(engine: Engine, items: list[Item], raw: dict[str, str], path: Path = CALIBRATION_FILE) -> dict[str, Any]:
    from evals.harness import run_stride

    original = engine.calibration
    best: dict[str, Any] | None = None
    try:
        for weight in COVERAGE_WEIGHTS:
            engine.calibration = Calibration(threshold=float("-inf"), coverage_weight=weight, source="sweep")
            rows = [
                {"answerable": r["answerable"], "fact_coverage": r["fact_coverage"],
                 "guarded": r["decline_reason"] == "out_of_scope",
                 "confidence": r["confidence"] if r["confidence"] is not None else float("-inf")}
                for r in run_stride(engine, items, raw)
            ]
            candidates = sorted({r["confidence"] for r in rows if r["confidence"] != float("-inf")})
            # Thresholds halfway between neighbouring confidences generalise better than the values.
            thresholds = [(a + b) / 2 for a, b in zip(candidates, candidates[1:])] or candidates
            for t in thresholds:
                objective, abstain = _score(rows, t)
                key = (objective, abstain["f1"], -abs(t - 0.45))
                if best is None or key > best["_key"]:
                    best = {"_key": key, "threshold": round(t, 4), "coverage_weight": weight,
                            "objective": round(objective, 4), "abstain_f1": round(abstain["f1"], 4)}
    finally:
        engine.calibration = original
    assert best is not None
    best.pop("_key")
    result = {**best, "fitted_on": f"dev ({len(items)} questions)", "fitted_at": time.strftime("%Y-%m-%d")}
    path.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    engine.calibration = replace(Calibration.load(path), source=f"{path.name} (dev)")
    return result
