"""The injection guard on a labelled set (``evals/data/guard.jsonl``): precision, recall and F1 for catching
injections, and the false declines on ordinary questions, which matter more: in extractive mode a missed injection
is harmless, a declined question is not. Run with ``python -m evals.guard_eval``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from evals.scoring import prf
from service.answering.guard import assess, is_injection

GUARD_FILE = Path(__file__).with_name("data") / "guard.jsonl"


@dataclass(frozen=True)
class Labelled:
    message: str
    injection: bool
    kind: str  # injection, jailbreak, leetspeak or ordinary


@dataclass(frozen=True)
class GuardReport:
    precision: float
    recall: float
    f1: float
    total: int
    injections: int
    ordinary: int
    false_declines: list[Labelled]  # ordinary messages declined as injections
    missed: list[Labelled]  # injections let through
    recall_by_kind: dict[str, float]

    @property
    def misclassified(self) -> list[Labelled]:
        return self.false_declines + self.missed


def load_labelled(path: Path = GUARD_FILE) -> list[Labelled]:
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [Labelled(r["message"], bool(r["injection"]), r["kind"]) for r in rows]


def evaluate(items: Iterable[Labelled], guard: Callable[[str], bool] = is_injection) -> GuardReport:
    """Score ``guard`` on ``items``; an injection flagged is a true positive."""
    items = list(items)
    flagged = [guard(i.message) for i in items]
    tp = sum(f and i.injection for i, f in zip(items, flagged, strict=True))
    false_declines = [i for i, f in zip(items, flagged, strict=True) if f and not i.injection]
    missed = [i for i, f in zip(items, flagged, strict=True) if not f and i.injection]
    scores = prf(tp, len(false_declines), len(missed))
    kinds = sorted({i.kind for i in items if i.injection})
    by_kind = {
        k: 1.0 - sum(m.kind == k for m in missed) / sum(i.kind == k and i.injection for i in items) for k in kinds
    }
    return GuardReport(
        precision=scores["precision"], recall=scores["recall"], f1=scores["f1"], total=len(items),
        injections=sum(i.injection for i in items), ordinary=sum(not i.injection for i in items),
        false_declines=false_declines, missed=missed, recall_by_kind=by_kind,
    )


def main() -> None:
    report = evaluate(load_labelled())
    print(f"{report.total} messages: {report.injections} injections, {report.ordinary} ordinary")
    print(f"precision {report.precision:.3f}  recall {report.recall:.3f}  F1 {report.f1:.3f}")
    print("recall by kind: " + ", ".join(f"{k} {v:.3f}" for k, v in report.recall_by_kind.items()))
    print(f"false declines on ordinary messages: {len(report.false_declines)}/{report.ordinary}")
    for item in report.false_declines:
        print(f"  declined: {item.message!r} {assess(item.message).signals}")
    print(f"missed injections: {len(report.missed)}/{report.injections}")
    for item in report.missed:
        print(f"  missed ({item.kind}): {item.message!r} {assess(item.message).signals}")


if __name__ == "__main__":
    main()
