"""Content edits while runners chat: ``clients`` concurrent chats against a running ``stride serve`` for
``duration`` seconds, while three real ``stride ingest`` runs publish an added article, a deleted one and a
full rebuild. For ``make bench`` and the live-index test (issue 11's bar).

Publish times come from watching the ``current`` pointer itself, so "answerable N s after publish"
counts from the moment the new version existed, not from when the ingest process got round to exiting.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from evals.serving import STRIDE
from ingest.store import IndexPaths

NEW_FILE = "900_posterior-tibialis.md"
NEW_ID = "900-posterior-tibialis"
NEW_ARTICLE = """# Posterior Tibialis Work for Runners

The posterior tibialis is a deep calf muscle that holds up the arch of the foot while it carries your weight.

## Seated band inversions

Sit with the band looped around the forefoot and turn the sole of the foot inwards against it, slowly, for three sets \
of twenty. Seated band inversions train the posterior tibialis without loading the shin.
"""
NEW_QUESTION = "How do I train the posterior tibialis with a band?"
DELETED_FILE = "003_c92f3383a1a91ea7.txt"
DELETED_ID = "does-running-help-hamstrings"


@dataclass
class LiveUpdateReport:
    clients: int
    seconds: float
    statuses: Counter[str] = field(default_factory=Counter)  # "200", "503", ..., "error" for a broken connection
    versions_seen: Counter[str] = field(default_factory=Counter)  # index_version of each answer
    published: list[str] = field(default_factory=list)  # index_version of each version published, in order
    invalid_versions: int = 0  # answers naming a version that was never published
    ingests: dict[str, float] = field(default_factory=dict)  # kind -> seconds the `stride ingest` took
    new_answerable_after_s: float | None = None  # publish -> first answer citing the new article
    deleted_gone_after_s: float | None = None  # publish -> GET /articles/<deleted> is 404
    latencies_ms: list[float] = field(default_factory=list)
    failures: Counter[str] = field(default_factory=Counter)  # "<status>: <detail>" of each failed answer

    @property
    def answers(self) -> int:
        return self.statuses.get("200", 0)

    @property
    def errors(self) -> int:
        return sum(n for status, n in self.statuses.items() if status != "200")

    def summary(self) -> dict[str, Any]:
        lat = sorted(self.latencies_ms)
        return {
            "clients": self.clients, "seconds": round(self.seconds, 1), "answers": self.answers,
            "errors": self.errors, "statuses": dict(self.statuses), "failures": dict(self.failures),
            "invalid_versions": self.invalid_versions,
            "versions_published": len(self.published), "versions_answered_from": len(self.versions_seen),
            "ingest_seconds": {k: round(v, 1) for k, v in self.ingests.items()},
            "new_article_answerable_after_s": _round(self.new_answerable_after_s),
            "deleted_article_404_after_s": _round(self.deleted_gone_after_s),
            "chat_p50_ms": round(lat[len(lat) // 2], 1) if lat else None,
            "chat_p95_ms": round(lat[int(len(lat) * 0.95)], 1) if lat else None,
        }


def _round(v: float | None) -> float | None:
    return None if v is None else round(v, 2)


class _PointerWatch:
    """Notes each newly published version (its index_version) and when it appeared, from the data dir's
    ``current`` link or the Chroma server's pointer record."""

    def __init__(self, env: dict[str, str]) -> None:
        self.url = env.get("STRIDE_CHROMA_URL")
        self.paths = IndexPaths.for_data_dir(Path(env.get("STRIDE_DATA_DIR", "data")))
        self.published: list[tuple[float, str, str]] = []  # (monotonic time, version id, index_version)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> _PointerWatch:
        if self.url:
            from ingest.chroma_server import ChromaServer

            self.server = ChromaServer.connect(self.url)
        self._note()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _note(self) -> None:
        vid = self.server.current_id() if self.url else self.paths.current_id()
        if vid and (not self.published or self.published[-1][1] != vid):
            if self.url:
                rec = self.server.read_version(vid)
                index_version = rec.manifest["index_version"] if rec else ""
            else:
                index_version = json.loads((self.paths.versions / vid / "index.json").read_text())["index_version"]
            self.published.append((time.monotonic(), vid, index_version))

    def _run(self) -> None:
        while not self._stop.wait(0.01 if not self.url else 0.05):
            self._note()

    def since(self, after: float) -> float:
        """When the first version published after ``after`` appeared."""
        return next(t for t, _, _ in self.published if t > after)


def run_live_update(bases: list[str], corpus_dir: Path, env: dict[str, str], questions: list[str], *,
                    clients: int = 16, duration: float = 60.0, cwd: Path | None = None) -> LiveUpdateReport:
    """The load and the three ingests. Clients spread over ``bases`` (replicas of one index); the new
    article counts as answerable, and the deleted one as gone, once every replica says so. ``env`` must
    point ``stride ingest`` at the served index and at ``corpus_dir`` (a copy: it is edited), and should
    turn the chat rate limit off (all clients share one address)."""
    report = LiveUpdateReport(clients=clients, seconds=duration)
    lock = threading.Lock()
    stop = threading.Event()

    def chat_loop(i: int) -> None:
        with httpx.Client(base_url=bases[i % len(bases)], timeout=30) as http:
            n = i
            while not stop.is_set():
                started = time.perf_counter()
                failure = None
                try:
                    r = http.post("/chat", json={"message": questions[n % len(questions)]})
                    status, version = str(r.status_code), (
                        r.json()["provenance"]["index_version"] if r.status_code == 200 else None)
                    if r.status_code != 200:
                        failure = f"{r.status_code}: {r.text[:300]}"
                except httpx.HTTPError as err:
                    status, version, failure = "error", None, f"error: {type(err).__name__}: {err}"
                with lock:
                    report.statuses[status] += 1
                    if failure is not None:
                        report.failures[failure] += 1
                    if version is not None:
                        report.versions_seen[version] += 1
                        report.latencies_ms.append((time.perf_counter() - started) * 1000)
                n += clients

    def ingest(kind: str, *args: str, publishes: Callable[[], bool] | None = None) -> float | None:
        """One real ``stride ingest``. With ``publishes``, polled while it runs (the ingest goes on tidying up
        after its publish): the seconds from the publish to the first time it held, None if it never did."""
        started = time.monotonic()
        held_at = None
        with tempfile.TemporaryFile(mode="w+") as err:  # a file, not a pipe: a chatty ingest never blocks
            proc = subprocess.Popen([*STRIDE, "ingest", *args], env=env, cwd=cwd, stdout=subprocess.DEVNULL,
                                    stderr=err, text=True)
            ended: float | None = None
            while publishes is not None and held_at is None:
                if publishes():
                    held_at = time.monotonic()
                elif proc.poll() is not None:
                    ended = ended or time.monotonic()
                    if proc.returncode != 0 or time.monotonic() - ended > 30:
                        break
                time.sleep(0.05)
            if proc.wait() != 0:  # say why, or a failed run is only "exit status 1"
                err.seek(0)
                said = (err.read().strip().splitlines() or ["(nothing on stderr)"])[-1]
                raise RuntimeError(f"the {kind} ingest exited {proc.returncode}: {said}")
        report.ingests[kind] = time.monotonic() - started
        return None if held_at is None else held_at - watch.since(started)

    probes = [httpx.Client(base_url=b, timeout=30) for b in bases]

    def cites_new() -> bool:
        for probe in probes:
            r = probe.post("/chat", json={"message": NEW_QUESTION})
            if r.status_code != 200 or not any(c["article_id"] == NEW_ID for c in r.json()["citations"]):
                return False
        return True

    def deleted_gone() -> bool:
        return all(probe.get(f"/articles/{DELETED_ID}").status_code == 404 for probe in probes)

    started = time.monotonic()
    workers = [threading.Thread(target=chat_loop, args=(i,), daemon=True) for i in range(clients)]
    with _PointerWatch(env) as watch:
        for w in workers:
            w.start()
        time.sleep(min(3.0, duration / 10))
        (corpus_dir / NEW_FILE).write_text(NEW_ARTICLE, encoding="utf-8")
        report.new_answerable_after_s = ingest("add an article", publishes=cites_new)
        (corpus_dir / DELETED_FILE).unlink()
        report.deleted_gone_after_s = ingest("delete an article", publishes=deleted_gone)
        ingest("rebuild", "--rebuild")
        stop.wait(max(0.0, duration - (time.monotonic() - started)))
        stop.set()
        for w in workers:
            w.join()
        report.seconds = time.monotonic() - started
    for probe in probes:
        probe.close()
    report.published = [v for _, _, v in watch.published]
    report.invalid_versions = sum(n for v, n in report.versions_seen.items() if v not in set(report.published))
    return report
