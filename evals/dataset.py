"""The hand-written Q&A set (``evals/data/qa.jsonl``)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

QA_FILE = Path(__file__).with_name("data") / "qa.jsonl"
SPLITS = ("dev", "test", "all")


@dataclass(frozen=True)
class Evidence:
    article_id: str
    text: str


@dataclass(frozen=True)
class Item:
    id: str
    split: str
    kind: str
    question: str
    history: tuple[tuple[str, str], ...]
    answerable: bool
    gold_answer: str
    key_facts: tuple[tuple[str, ...], ...]
    evidence: tuple[Evidence, ...]
    article_ids: tuple[str, ...] = field(default=())


def load_items(split: str = "all", path: Path = QA_FILE) -> list[Item]:
    if split not in SPLITS:
        raise ValueError(f"split must be one of {', '.join(SPLITS)}")
    items: list[Item] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        d = json.loads(line)
        items.append(
            Item(
                id=d["id"],
                split=d["split"],
                kind=d["kind"],
                question=d["question"],
                history=tuple((t["role"], t["content"]) for t in d.get("history", [])),
                answerable=bool(d["answerable"]),
                gold_answer=d["gold_answer"],
                key_facts=tuple(tuple(g) for g in d["key_facts"]),
                evidence=tuple(Evidence(e["article_id"], e["text"]) for e in d["evidence"]),
                article_ids=tuple(d["article_ids"]),
            )
        )
    return [i for i in items if split == "all" or i.split == split]
