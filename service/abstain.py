"""When to decline: the calibrated confidence rule. The threshold and weight are fitted on the dev
split by ``stride eval --split dev --calibrate`` and written to ``service/calibration.json``."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from service.query import Query
from service.retrieval import Hit

CALIBRATION_FILE = Path(__file__).with_name("calibration.json")


@dataclass(frozen=True)
class Calibration:
    threshold: float = 0.45
    coverage_weight: float = 0.3
    source: str = "default"

    @classmethod
    def load(cls, path: Path = CALIBRATION_FILE, override: float | None = None) -> Calibration:
        cal = cls()
        if path.exists():
            data = json.loads(path.read_text(encoding="utf-8"))
            cal = cls(float(data["threshold"]), float(data["coverage_weight"]), f"{path.name} ({data.get('fitted_on', '?')})")
        if override is not None:
            cal = cls(override, cal.coverage_weight, "STRIDE_ABSTAIN_THRESHOLD")
        return cal


def confidence(query: Query, hits: list[Hit], coverage_weight: float) -> float:
    """How well the best evidence matches: the best sentence's cosine among the top chunks, lowered
    when the question's words are unknown to the corpus (a topic the articles never mention)."""
    if not hits:
        return 0.0
    best = max(h.best_sentence_cos for h in hits[:3])
    return best - coverage_weight * (1.0 - query.coverage)
