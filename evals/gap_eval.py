"""The coverage report's gap classes on a labelled log (``evals/data/gaps.jsonl``): each question asked of the
index as the report asks it, kept when it is a gap (declined, or answered below threshold + margin) and
classified; precision and recall per class and for "what to write next" (adjacent + partly covered).

The thresholds in ``service.coverage.classify`` were chosen on the dev split; report the test split:
``python -m evals.gap_eval --split test`` (needs ``stride ingest`` first; uses STRIDE_DATA_DIR).
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from evals.scoring import prf
from service.coverage.classify import GAP_CLASSES, WRITE_NEXT, Assessment, GapRules, classify
from service.coverage.model import LOW_CONFIDENCE_MARGIN, is_gap

GAPS_FILE = Path(__file__).with_name("data") / "gaps.jsonl"
NOT_A_GAP = "not a gap"


@dataclass(frozen=True)
class LabelledGap:
    question: str
    label: str  # one of GAP_CLASSES
    kind: str  # the label, or for abuse: injection | gibberish
    split: str


@dataclass(frozen=True)
class GapEvalReport:
    total: int
    gaps: int
    per_class: dict[str, dict[str, float]]  # precision, recall, f1, support (gap questions with that label)
    write_next: dict[str, float]
    not_gaps: Counter[str]  # labels of the questions the index answered confidently
    confusion: Counter[tuple[str, str]]  # (label, predicted), gap questions only
    wrong: list[tuple[LabelledGap, str]]


def load_labelled(path: Path = GAPS_FILE, split: str = "all") -> list[LabelledGap]:
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    items = [LabelledGap(r["question"], r["label"], r["kind"], r["split"]) for r in rows]
    return [i for i in items if split == "all" or i.split == split]


def evaluate(items: Sequence[LabelledGap], assessor: Callable[[str], Assessment], threshold: float,
             rules: GapRules | None = None, margin: float = LOW_CONFIDENCE_MARGIN) -> GapEvalReport:
    predicted = []
    for item in items:
        a = assessor(item.question)
        predicted.append(classify(a, rules) if is_gap(not a.answered, a.confidence, threshold, margin) else NOT_A_GAP)
    gaps = [(i, p) for i, p in zip(items, predicted, strict=True) if p != NOT_A_GAP]
    per_class: dict[str, dict[str, float]] = {}
    for c in GAP_CLASSES:
        tp = sum(i.label == c and p == c for i, p in gaps)
        fp = sum(i.label != c and p == c for i, p in gaps)
        fn = sum(i.label == c and p != c for i, p in gaps)
        per_class[c] = {**prf(tp, fp, fn), "support": float(tp + fn)}
    tp = sum(i.label in WRITE_NEXT and p in WRITE_NEXT for i, p in gaps)
    fp = sum(i.label not in WRITE_NEXT and p in WRITE_NEXT for i, p in gaps)
    fn = sum(i.label in WRITE_NEXT and p not in WRITE_NEXT for i, p in gaps)
    return GapEvalReport(
        total=len(items), gaps=len(gaps), per_class=per_class,
        write_next={**prf(tp, fp, fn), "support": float(tp + fn)},
        not_gaps=Counter(i.label for i, p in zip(items, predicted, strict=True) if p == NOT_A_GAP),
        confusion=Counter((i.label, p) for i, p in gaps),
        wrong=[(i, p) for i, p in gaps if p != i.label],
    )


def print_report(report: GapEvalReport, split: str) -> None:
    print(f"split {split}: {report.total} labelled questions, {report.gaps} of them gaps "
          f"(the rest answered confidently: {dict(report.not_gaps)})")
    print(f"{'class':16s} {'precision':>9s} {'recall':>7s} {'F1':>6s} {'support':>8s}")
    for c, s in report.per_class.items():
        print(f"{c:16s} {s['precision']:9.3f} {s['recall']:7.3f} {s['f1']:6.3f} {int(s['support']):8d}")
    w = report.write_next
    print(f"{'write next':16s} {w['precision']:9.3f} {w['recall']:7.3f} {w['f1']:6.3f} {int(w['support']):8d}"
          "   (adjacent + partly covered, against off-topic + abuse)")
    print("misclassified:")
    for item, p in report.wrong:
        print(f"  {item.label} ({item.kind}) -> {p}: {item.question!r}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--split", choices=["dev", "test", "all"], default="test")
    args = parser.parse_args()
    from ingest.settings import load_settings
    from service.answering.engine import Engine
    from service.coverage.gap_build import chat_assessor

    engine = Engine.load(load_settings())
    report = evaluate(load_labelled(split=args.split), chat_assessor(engine), float(engine.calibration.threshold))
    print_report(report, args.split)


if __name__ == "__main__":
    main()
