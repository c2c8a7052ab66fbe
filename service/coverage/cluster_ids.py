"""Cluster ids that stay put between reports. Clustering runs afresh each time, so a cluster is matched to
the previous report's clusters by the questions they share: it keeps the id of the one it shares the most
with (each id goes to one cluster), and a cluster with no predecessor gets an id from its earliest question.
A content team's marks refer to these ids. Pure."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

PREFIX = "gap-"


@dataclass(frozen=True)
class ClusterKeys:
    keys: frozenset[str]  # its questions (``asks.question_key``)
    earliest: str  # the key of its first-asked question


def new_id(key: str, taken: set[str]) -> str:
    digest = hashlib.sha256(key.encode("utf-8")).hexdigest()
    for size in range(8, len(digest) + 1):
        candidate = PREFIX + digest[:size]
        if candidate not in taken:
            return candidate
    raise ValueError(f"no free id for {key!r}")  # 2^256 ids taken: not in this universe


def assign_ids(clusters: Sequence[ClusterKeys], previous: Mapping[str, frozenset[str]]) -> list[str]:
    """An id per cluster, in order. Pairs are taken by shared questions, most first (ties by id, then by
    cluster order, so every run decides alike): a cluster that split keeps its id on the larger part."""
    pairs = sorted(
        ((len(c.keys & keys), cid, i) for i, c in enumerate(clusters) for cid, keys in previous.items()
         if c.keys & keys),
        key=lambda p: (-p[0], p[1], p[2]),
    )
    ids: list[str | None] = [None] * len(clusters)
    used: set[str] = set()
    for _, cid, i in pairs:
        if ids[i] is None and cid not in used:
            ids[i] = cid
            used.add(cid)
    taken = used | set(previous)
    out: list[str] = []
    for c, matched in zip(clusters, ids, strict=True):
        cid = matched if matched is not None else new_id(c.earliest, taken)
        taken.add(cid)
        out.append(cid)
    return out
