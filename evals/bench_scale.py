"""`make bench-scale`: what corpus size costs (issue 11). For synthetic corpora of about 1k, 10k and 100k
chunks, in one run: /search and /chat p50/p95 against a real `stride serve`, its start-up time and RSS,
and the time of a real `stride ingest` after one article changed. Prints a table and writes
artifacts/bench_scale.json. Targets at 100k chunks (2-core machine): /search p50 ≤ 50 ms, /chat p50 ≤ 80 ms,
start-up ≤ 20 s, RSS ≤ 2 GB, a one-article update ≤ 10 s. Reported, not asserted.

Each corpus is real markdown articles (``evals/synthetic.py``: real sentences recombined, 21 chunks an
article) indexed by the real pipeline (``run_ingest``) with a fast hashing embedder standing in for the
model: query cost does not depend on what the vectors mean. That build is set-up, timed but not a result.
The server and the incremental ingest then run with the real model, as a user runs them.

    python -m evals.bench_scale [--sizes 1000,10000,100000] [--requests 100] [--rss-cap-mb 12000]
                                [--keep] [--reuse 100000=DIR]   # DIR: a corpus and index --keep left

/search and /chat are timed one request at a time from one client, after a short warm-up, each question
new to the server's caches. The incremental ingest runs with the server stopped. Both depend on the machine's
state, which the table's load average hints at: start-up reads every shard, about twice as slowly when the
kernel has dropped the index's files from its page cache, and the update's two processes (the ingest and its
embedding helper) need both cores.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import httpx

from evals.bench import HERE, pct, rss_mb
from evals.dataset import load_items
from evals.serving import STRIDE, stride_serve

CHUNKS_PER_ARTICLE = 21  # evals.synthetic.article_text's defaults: an intro and 5 sections of 4 paragraphs
TARGETS_100K = {"search_p50_ms": 50, "chat_p50_ms": 80, "startup_s": 20, "rss_mb": 2048, "update_s": 10}


class StageClock:
    """``ingest.pipeline.Progress`` that notes when each stage began."""

    def __init__(self) -> None:
        self.stages: list[tuple[str, float]] = []

    def stage(self, name: str, total: int | None) -> None:
        self.stages.append((name, time.perf_counter()))

    def advance(self, n: int = 1) -> None:
        pass


def build_index(corpus: Path, data: Path, articles: int) -> dict[str, Any]:
    """Write ``articles`` synthetic articles to ``corpus`` and index them into ``data`` through
    ``run_ingest`` with the hashing embedder. Runs in a child process, so its memory goes with it."""
    from evals.synthetic import HashingEmbedder, hashing_embeddings_factory, sentence_pool, write_corpus
    from ingest.pipeline import run_ingest
    from ingest.settings import load_settings

    started = time.perf_counter()
    pool = sentence_pool(HERE / "corpus")
    write_corpus(corpus, articles, pool, lexicon=HERE / "corpus" / "lexicon.json")
    written = time.perf_counter()
    settings = load_settings(data_dir=data, corpus_dir=corpus)
    clock, model = StageClock(), HashingEmbedder()
    report = run_ingest(settings, progress=clock, embeddings_factory=hashing_embeddings_factory(model))
    done = time.perf_counter()
    # Stages: reading and chunking, then (once the index is open) the model, embedding; indexing after.
    chunked = clock.stages[1][1] if len(clock.stages) > 1 else done
    return {
        "articles": articles,
        "chunks": report.num_added,
        "chunks_within_10_percent": abs(report.num_added / (articles * CHUNKS_PER_ARTICLE) - 1) <= 0.1,
        "seconds": round(done - started, 1),
        "write_files_s": round(written - started, 1),
        "read_clean_chunk_s": round(chunked - written, 1),
        "embed_s": round(model.seconds, 1),
        "index_and_write_s": round(done - chunked - model.seconds, 1),
        "disk_mb": round(sum(p.stat().st_size for p in data.rglob("*") if p.is_file()) / 2**20, 1),
        "model": report.model,
    }


class ChildWatch:
    """Watches this process's children (the server) from the moment one starts: kills it past an RSS cap
    (a runaway 100k-chunk start-up must not take the machine down) or once its /readyz says it cannot
    start (it would otherwise wait out the start-up timeout), and says which."""

    def __init__(self, cap_mb: float) -> None:
        self.cap_mb = cap_mb
        self.killed: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> ChildWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    @staticmethod
    def children() -> list[int]:
        me, out = os.getpid(), []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == me:
                out.append(int(stat.parent.name))
        return out

    @staticmethod
    def readiness(pid: int) -> dict[str, Any] | None:
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")
            port = argv[argv.index("--port") + 1]
            body: dict[str, Any] = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).json()
            return body
        except (OSError, ValueError, IndexError, httpx.HTTPError):
            return None

    def _run(self) -> None:
        ticks = 0
        while not self._stop.wait(0.25):
            ticks += 1
            for pid in self.children():
                try:
                    rss, _ = rss_mb(pid)
                except (OSError, KeyError):
                    continue
                if rss > self.cap_mb:
                    self.killed = f"killed at {rss:.0f} MB RSS (cap {self.cap_mb:.0f} MB)"
                    os.kill(pid, 9)
                elif ticks % 4 == 0 and (body := self.readiness(pid)) and body.get("status") == "error":
                    self.killed = f"not ready: {body.get('detail')}"
                    os.kill(pid, 9)


@contextmanager
def timed_serve(env: dict[str, str], cap_mb: float, timeout: float) -> Iterator[tuple[Any, float, ChildWatch]]:
    with ChildWatch(cap_mb) as watch:
        started = time.perf_counter()
        try:
            with stride_serve(env, cwd=HERE, timeout=timeout) as served:
                yield served, time.perf_counter() - started, watch
        except RuntimeError as err:
            if watch.killed:
                raise RuntimeError(f"server {watch.killed} after {time.perf_counter() - started:.1f} s") from err
            raise


def latencies(client: httpx.Client, base: str, route: str, questions: list[str], n: int) -> list[float]:
    """``n`` sequential requests (ms), each new to the server's query caches. The suffix is a number, and
    a different one per route: the query cache is keyed by the resolved query, which drops brackets,
    so "q (1)" and "q <1>" are one entry and /chat would reuse the vectors /search left behind."""
    offset = 0 if route == "/chat" else 100_000
    out = []
    for i in range(n):
        q = f"{questions[i % len(questions)]} ({offset + i})"
        body = {"message": q} if route == "/chat" else {"query": q, "k": 5}
        t = time.perf_counter()
        client.post(base + route, json=body).raise_for_status()
        out.append((time.perf_counter() - t) * 1000)
    return out


def bench_server(env: dict[str, str], requests: int, cap_mb: float, timeout: float) -> dict[str, Any]:
    questions = [i.question for i in load_items("dev") if i.answerable and not i.history]
    with timed_serve(env, cap_mb, timeout) as (served, ready_s, _), httpx.Client(timeout=120) as client:
        readyz = client.get(served.base + "/readyz").json()
        rss_ready, _ = rss_mb(served.pid)
        for q in questions[-5:]:  # warm-up
            client.post(served.base + "/search", json={"query": q, "k": 5})
            client.post(served.base + "/chat", json={"message": q})
        search = latencies(client, served.base, "/search", questions, requests)
        chat = latencies(client, served.base, "/chat", questions, requests)
        rss, peak = rss_mb(served.pid)
    return {
        "startup_s": round(ready_s, 2),
        "startup_server_s": readyz.get("startup_seconds"),
        "rss_ready_mb": round(rss_ready, 1),
        "rss_mb": round(rss, 1),
        "peak_rss_mb": round(peak, 1),
        "search_ms": {"p50": round(pct(search, 50), 1), "p95": round(pct(search, 95), 1), "n": len(search)},
        "chat_ms": {"p50": round(pct(chat, 50), 1), "p95": round(pct(chat, 95), 1), "n": len(chat)},
    }


PARAGRAPH = ("Runners who add two short strength sessions a week to their training often find that their hips "
             "and calves tire later in a long run. A changed paragraph for the scale benchmark, number {n}.")


def bench_update(env: dict[str, str], corpus: Path, articles: int) -> dict[str, Any]:
    """Append a paragraph to one article and time a real `stride ingest` (model load included). A failed
    run is a result too: its time and the end of its message."""
    target = corpus / f"a{articles // 2:06d}.md"
    with target.open("a", encoding="utf-8") as fh:
        fh.write("\n" + PARAGRAPH.format(n=articles) + "\n")
    started = time.perf_counter()
    done = subprocess.run([*STRIDE, "ingest", "--json"], env=env, capture_output=True, text=True, cwd=HERE)
    seconds = round(time.perf_counter() - started, 2)
    if done.returncode:
        message = done.stderr.rsplit("╰", 1)[-1].partition("\n")[2] or done.stderr  # past a rich traceback
        return {"seconds": seconds, "server": "stopped", "article": target.stem,
                "error": " ".join(message.split())[-300:]}
    report = json.loads(done.stdout.strip().splitlines()[-1])
    changed = sorted(aid for aid, c in report["articles"].items() if c["added"] or c["deleted"])
    return {
        "seconds": seconds,
        "server": "stopped",
        "article": target.stem,
        "num_added": report["num_added"],
        "num_deleted": report["num_deleted"],
        "articles_changed": changed,
        "only_that_article": changed == [target.stem] and report["num_added"] > 0,
    }


def bench_size(size: int, args: argparse.Namespace) -> dict[str, Any]:
    reuse = args.reuse.get(size)
    root = Path(reuse or tempfile.mkdtemp(prefix=f"stride-scale-{size}-", dir=args.tmp))
    corpus, data = root / "corpus", root / "data"
    out: dict[str, Any] = {"target_chunks": size, "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                           "load_average_before": [round(x, 2) for x in os.getloadavg()]}
    try:
        if reuse:  # a corpus and index kept by an earlier --keep run: measure again without rebuilding
            out["build"] = {**json.loads((root / "build.json").read_text()), "reused": str(root)}
        else:
            with ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn")) as pool:
                out["build"] = pool.submit(build_index, corpus, data, max(1, round(size / CHUNKS_PER_ARTICLE))).result()
            (root / "build.json").write_text(json.dumps(out["build"]))
        print(f"[{size}] built {out['build']['chunks']} chunks in {out['build']['seconds']} s", flush=True)
        env = {**os.environ, "STRIDE_DATA_DIR": str(data), "STRIDE_CORPUS_DIR": str(corpus),
               "STRIDE_RATE_LIMIT_CHAT": "", "STRIDE_RATE_LIMIT_SEARCH": ""}
        try:
            out["server"] = bench_server(env, args.requests, args.rss_cap_mb, args.start_timeout)
        except (RuntimeError, TimeoutError) as err:
            out["server"] = {"error": str(err)[-500:]}
        print(f"[{size}] server: {out['server']}", flush=True)
        out["update"] = bench_update(env, corpus, out["build"]["articles"])
        print(f"[{size}] update: {out['update']}", flush=True)
        out["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    finally:
        if args.keep or reuse:
            print(f"[{size}] kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    return out


def _fmt(value: Any, unit: str = "") -> str:
    return "—" if value is None else f"{value}{unit}"


def table(results: dict[str, dict[str, Any]]) -> Any:
    from rich.table import Table

    t = Table(title="stride bench-scale")
    t.add_column("measure")
    for size in results:
        t.add_column(f"~{int(size):,} chunks", justify="right")
    t.add_column("target at 100k", justify="right")

    def row(label: str, get: Any, target: str = "") -> None:
        cells = []
        for r in results.values():
            try:
                cells.append(get(r))
            except (KeyError, TypeError):
                cells.append("—")
        t.add_row(label, *cells, target)

    row("chunks indexed (articles)", lambda r: f"{r['build']['chunks']:,} ({r['build']['articles']:,})")
    row("/search p50 / p95", lambda r: f"{r['server']['search_ms']['p50']} / {r['server']['search_ms']['p95']} ms",
        f"p50 ≤ {TARGETS_100K['search_p50_ms']} ms")
    row("/chat p50 / p95", lambda r: f"{r['server']['chat_ms']['p50']} / {r['server']['chat_ms']['p95']} ms",
        f"p50 ≤ {TARGETS_100K['chat_p50_ms']} ms")
    row("start-up: process start → /readyz 200",
        lambda r: "failed (below)" if "error" in r["server"] else f"{r['server']['startup_s']} s",
        f"≤ {TARGETS_100K['startup_s']} s")
    row("  the server's own count (index + model)", lambda r: _fmt(r["server"]["startup_server_s"], " s"))
    row("server RSS: ready / after requests / peak",
        lambda r: f"{r['server']['rss_ready_mb']:.0f} / {r['server']['rss_mb']:.0f} / "
                  f"{r['server']['peak_rss_mb']:.0f} MB",
        f"≤ {TARGETS_100K['rss_mb']} MB")
    row("one article changed: `stride ingest` (server stopped)",
        lambda r: f"{r['update']['seconds']} s" + (", failed (below)" if "error" in r["update"] else ""),
        f"≤ {TARGETS_100K['update_s']} s")
    row("  chunks added / deleted, only that article",
        lambda r: f"{r['update']['num_added']} / {r['update']['num_deleted']}, {r['update']['only_that_article']}")
    row("load average (1 min) before / after",
        lambda r: f"{r['load_average_before'][0]} / {r['load_average_after'][0]}", f"{os.cpu_count()} cores")
    row("set-up (not a result): synthetic build",
        lambda r: f"{r['build']['seconds']} s" + (" (earlier run's, reused)" if r["build"].get("reused") else ""))
    row("  read+clean+chunk / embed (hashing) / index+write",
        lambda r: f"{r['build']['read_clean_chunk_s']} / {r['build']['embed_s']} / {r['build']['index_and_write_s']} s")
    row("  index on disk", lambda r: f"{r['build']['disk_mb']:.0f} MB")
    return t


def main() -> None:
    from rich.console import Console

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1000,10000,100000", help="chunk counts, comma-separated")
    parser.add_argument("--requests", type=int, default=100, help="sequential requests per route and size")
    parser.add_argument("--rss-cap-mb", type=float, default=12000, help="kill the server past this RSS")
    parser.add_argument("--start-timeout", type=float, default=900, help="seconds to wait for /readyz")
    parser.add_argument("--tmp", default=None, help="where the corpora and indexes are built (default: TMPDIR)")
    parser.add_argument("--keep", action="store_true", help="keep each corpus and index (and build.json)")
    parser.add_argument("--reuse", action="append", default=[], metavar="SIZE=DIR",
                        help="measure the corpus and index an earlier --keep run left in DIR again, unbuilt")
    parser.add_argument("--out", type=Path, default=HERE / "artifacts" / "bench_scale.json")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    args.reuse = {int(size): folder for size, _, folder in (r.partition("=") for r in args.reuse)}
    results: dict[str, dict[str, Any]] = {}
    out: dict[str, Any] = {"machine": {"cpus": os.cpu_count()}, "targets_at_100k": TARGETS_100K, "sizes": results}
    for size in sizes:
        results[str(size)] = bench_size(size, args)
        args.out.parent.mkdir(exist_ok=True)
        args.out.write_text(json.dumps(out, indent=1))  # after each size: a long run keeps what it measured
    console = Console(width=max(Console().width, 150))  # a pipe's 80 columns would fold every row
    console.print(table(results))
    for key, r in results.items():
        for part in ("server", "update"):
            if "error" in r.get(part, {}):
                console.print(f"{int(key):,} chunks, {part} failed: {r[part]['error']}", markup=False)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
