"""`make bench`: ingest and service performance on this machine. Prints a table and writes
artifacts/bench.json. Targets (2-core machine): cold ingest ≤ 15 s, no-op ≤ 3 s; /chat p50 ≤ 25 ms,
p95 ≤ 60 ms; ≥ 60 req/s at 16 clients with 0 errors; ready ≤ 8 s; RSS ≤ 1.2 GB; with another process
holding the feedback database's write lock for 25 s, /healthz and /chat p95 ≤ 100 ms and no query-log row lost;
/coverage ≤ 2 s at 10k logged queries; in LLM mode the first token of /chat/stream ≤ half the whole answer;
with 16 clients chatting while an article is added, one deleted and the index rebuilt, 0 errors and the new
article answerable ≤ 5 s after its publish.
Targets are reported, not asserted: a benchmark informs, tests decide.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

from evals.dataset import load_items
from evals.live_update import run_live_update
from evals.serving import STRIDE, free_port, stride_serve

HERE = Path.cwd()  # run from the project root (`make bench`): corpus/ and artifacts/ are relative to it


def pct(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] if len(values) > 1 else values[0]


def timed_ingest(env: dict[str, str]) -> tuple[float, dict[str, Any]]:
    started = time.perf_counter()
    done = subprocess.run([*STRIDE, "ingest", "--json"], env=env, capture_output=True, text=True, check=True, cwd=HERE)
    return time.perf_counter() - started, json.loads(done.stdout.strip().splitlines()[-1])


def rss_mb(pid: int) -> tuple[float, float]:
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


async def load(base: str, questions: list[str], clients: int, total: int) -> tuple[float, dict[str, int], list[float]]:
    """``total`` chats from ``clients`` concurrent connections, each sending its next at once (or after
    Retry-After when turned away): requests per second, a count per status (``error`` for a dropped
    connection) and the latencies of the answered ones."""
    queue: asyncio.Queue[str] = asyncio.Queue()
    for i in range(total):
        queue.put_nowait(questions[i % len(questions)])
    statuses: dict[str, int] = {}
    latencies: list[float] = []

    async def worker(client: httpx.AsyncClient) -> None:
        while not queue.empty():
            q = queue.get_nowait()
            t = time.perf_counter()
            wait = 0.0
            try:
                r = await client.post(base + "/chat", json={"message": q})
                status, wait = str(r.status_code), float(r.headers.get("retry-after", 0))
            except httpx.HTTPError:
                status = "error"
            statuses[status] = statuses.get(status, 0) + 1
            if status == "200":
                latencies.append((time.perf_counter() - t) * 1000)
            await asyncio.sleep(wait)  # a turned-away client waits as told, as the widget's reader would

    # A keep-alive slot per client: past that, httpcore's pool closes idle connections it has just handed out.
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(timeout=30, limits=limits) as client:
        started = time.perf_counter()
        await asyncio.gather(*(worker(client) for _ in range(clients)))
        elapsed = time.perf_counter() - started
    return total / elapsed, statuses, latencies


def _not_ok(statuses: dict[str, int]) -> int:
    return sum(n for status, n in statuses.items() if status != "200")


CURVE_CLIENTS = (1, 2, 4, 8, 16, 64)


def bench_service(env: dict[str, str]) -> dict[str, Any]:
    questions = [i.question for i in load_items("all")]
    # Every request comes from one address here: per-client rate limits would measure themselves.
    env = {**env, "STRIDE_RATE_LIMIT_CHAT": "", "STRIDE_RATE_LIMIT_SEARCH": ""}
    started = time.perf_counter()
    with stride_serve(env, cwd=HERE) as served:
        base = served.base
        ready_s = time.perf_counter() - started
        with httpx.Client(timeout=30) as client:
            for q in questions[:5]:
                client.post(base + "/chat", json={"message": q})  # warm-up
            chat, search = [], []
            for i, q in enumerate(questions):
                # A tag word makes each request new to the server's query cache (keyed on the analysed question,
                # which keeps words but not brackets): these are uncached timings, and /search never reuses
                # /chat's vector.
                msg = f"{q} c{i}"
                t = time.perf_counter()
                client.post(base + "/chat", json={"message": msg}).raise_for_status()
                chat.append((time.perf_counter() - t) * 1000)
                t = time.perf_counter()
                client.post(base + "/search", json={"query": f"{q} s{i}", "k": 5}).raise_for_status()
                search.append((time.perf_counter() - t) * 1000)
        unique = [f"{q} u{n}" for n in range(10) for q in questions]
        rps_unique, st_unique, _ = asyncio.run(load(base, unique, 16, 800))
        rps_cached, st_cached, _ = asyncio.run(load(base, questions, 16, 800))
        # Four times the in-flight cap: the excess is shed at once with 503, the rest answered promptly.
        rps_64, st_64, lat_64 = asyncio.run(load(base, [f"{q} w{n}" for n in range(10) for q in questions],
                                                 64, 1600))
        # The concurrency curve: unique questions at each client count (each round its own suffix, so no
        # round is served from another's cache).
        curve = []
        for n_clients in CURVE_CLIENTS:
            qs = [f"{q} k{n_clients}n{n}" for n in range(4) for q in questions]
            rps, st, lat = asyncio.run(load(base, qs, n_clients, max(200, 25 * n_clients)))
            curve.append({"clients": n_clients, "rps": round(rps, 1),
                          "p95_ms": round(pct(lat, 95), 1) if lat else None,
                          "answered": st.get("200", 0), "shed": st.get("503", 0), "errors": st.get("error", 0)})
        rss, peak = rss_mb(served.pid)
        stalled = bench_stalled_lock(base, Path(env["STRIDE_DATA_DIR"]) / "feedback.sqlite")
    return {
        "ready_seconds": round(ready_s, 2),
        "chat_ms": {"p50": round(pct(chat, 50), 1), "p95": round(pct(chat, 95), 1), "n": len(chat)},
        "search_ms": {"p50": round(pct(search, 50), 1), "p95": round(pct(search, 95), 1), "n": len(search)},
        "throughput_16_clients": {
            "unique_questions_rps": round(rps_unique, 1), "unique_errors": _not_ok(st_unique),
            "repeated_questions_rps": round(rps_cached, 1), "repeated_errors": _not_ok(st_cached),
        },
        "clients_64": {"rps": round(rps_64, 1), "statuses": st_64,
                       "answered_p95_ms": round(pct(lat_64, 95), 1) if lat_64 else None},
        "concurrency_curve": curve,
        "rss_mb": round(rss, 1),
        "peak_rss_mb": round(peak, 1),
        "stalled_lock": stalled,
    }


# Another process holding the feedback database's write lock, as a backup or an analyst's tool might.
LOCK_HOLDER = """
import sqlite3, sys, time
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("BEGIN IMMEDIATE")
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
db.execute("ROLLBACK")
"""


def _burst_chat(base: str, i: int) -> tuple[float, str | None, int]:
    t = time.perf_counter()
    r = httpx.post(base + "/chat", json={"message": f"How much protein does a 70 kg runner need? ({i})"}, timeout=60)
    return (time.perf_counter() - t) * 1000, r.headers.get("x-stride-query-id"), r.status_code


def bench_stalled_lock(base: str, db_path: Path, seconds: float = 25.0, burst: int = 50) -> dict[str, Any]:
    """While another process holds the write lock: /healthz and /chat latency, and after it lets go,
    how many of the chats' query-log rows reached the database. The same burst is first sent with no
    lock held: on 2 cores, 50 answers at once take a while anyway, and the lock must add nothing."""
    with ThreadPoolExecutor(max_workers=burst) as pool:
        unlocked = list(pool.map(lambda i: _burst_chat(base, i), range(5000, 5000 + burst)))
    holder = subprocess.Popen([sys.executable, "-c", LOCK_HOLDER, str(db_path), str(seconds)],
                              stdout=subprocess.PIPE, text=True)
    assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
    health: list[float] = []
    stop = threading.Event()

    def poll_health() -> None:
        while not stop.is_set():
            t = time.perf_counter()
            httpx.get(base + "/healthz", timeout=30)
            health.append((time.perf_counter() - t) * 1000)
            stop.wait(0.1)

    def chat(i: int) -> tuple[float, str | None, int]:
        return _burst_chat(base, i)

    poller = threading.Thread(target=poll_health)
    poller.start()
    with ThreadPoolExecutor(max_workers=burst) as pool:
        burst_results = list(pool.map(chat, range(burst)))
    paced = []
    for i in range(20):  # one at a time, as a quiet widget would send them
        paced.append(chat(1000 + i))
        time.sleep(0.1)
    holder.wait()
    stop.set()
    poller.join()
    ids = {qid for _, qid, _ in burst_results + paced if qid}
    deadline = time.monotonic() + 15
    while True:
        with sqlite3.connect(db_path) as db:
            logged = len(ids & {row[0] for row in db.execute("SELECT id FROM queries")})
        if logged == len(ids) or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    return {
        "lock_seconds": seconds,
        "healthz_p95_ms": round(pct(health, 95), 1),
        "chat_burst_p95_ms": round(pct([ms for ms, _, st in burst_results if st == 200], 95), 1),
        "chat_burst_shed": sum(1 for _, _, st in burst_results if st == 503),
        "chat_burst_unlocked_p95_ms": round(pct([ms for ms, _, st in unlocked if st == 200], 95), 1),
        "chat_burst_unlocked_shed": sum(1 for _, _, st in unlocked if st == 503),
        "chat_paced_p95_ms": round(pct([ms for ms, _, _ in paced], 95), 1),
        "rows_logged": logged,
        "rows_expected": len(ids),
    }


def bench_coverage(env: dict[str, str], rows: int = 10_000) -> dict[str, Any]:
    """GET /coverage over a query log of ``rows`` questions: the first view after start, a view with
    nothing new, and a view after 100 more questions. The log is written directly (answering 10k
    questions over HTTP would measure /chat): each eval and guard question is answered once for real,
    and most rows repeat one with a suffix, so thousands of distinct gap questions reach clustering."""
    import random

    from fastapi.testclient import TestClient

    from evals.guard_eval import GUARD_FILE
    from ingest.settings import load_settings
    from service.answering.engine import Engine
    from service.api.app import create_app
    from service.feedback.store import FeedbackStore

    settings = load_settings(data_dir=Path(env["STRIDE_DATA_DIR"]), admin_api_key="bench")
    engine = Engine.load(settings)
    guard = [json.loads(line)["message"] for line in GUARD_FILE.read_text().splitlines() if line.strip()]
    base = [i.question for i in load_items("all")] + guard
    answers = {q: engine.chat(q) for q in base}
    rng = random.Random(7)
    weights = [1 / (rank + 1) for rank in range(len(base))]  # a few questions asked often, most rarely

    def log(store: FeedbackStore, n: int, offset: int) -> None:
        for i in range(n):
            q = rng.choices(base, weights)[0]
            a = answers[q]
            question = q if rng.random() < 0.4 else f"{q} ({offset + i})"
            store.log_query(question, [], {"answer": a.answer, "abstained": a.abstained,
                                           "citations": [c.model_dump() for c in a.citations],
                                           "provenance": a.provenance.model_dump()})
        store.flush(60)

    db_path = Path(env["STRIDE_DATA_DIR"]) / "feedback.sqlite"
    db_path.unlink(missing_ok=True)
    seed = FeedbackStore(db_path)
    log(seed, rows, 0)
    seed.close()
    timings: dict[str, float] = {}
    app = create_app(settings, engine_factory=lambda _: engine)
    with TestClient(app) as client:
        while client.get("/readyz").status_code != 200:
            time.sleep(0.05)
        for name in ("first_view", "unchanged_view"):
            t = time.perf_counter()
            client.get("/coverage", headers={"X-Admin-Key": "bench"}).raise_for_status()
            timings[name] = time.perf_counter() - t
        store = app.state.stride.feedback
        log(store, 100, rows)
        t = time.perf_counter()
        page = client.get("/coverage", headers={"X-Admin-Key": "bench"})
        page.raise_for_status()
        timings["view_after_100_new"] = time.perf_counter() - t
        mark = store.query_log_mark()
    return {"logged_queries": mark[0], **{k: round(v, 2) for k, v in timings.items()},
            "page_kb": round(len(page.content) / 1024)}


def stream_timings(base: str, questions: list[str]) -> dict[str, float]:
    """/chat/stream as the widget reads it: time to the first token event, and to the done event (ms, p50)."""
    first, total = [], []
    with httpx.Client(timeout=60) as client:
        for i, q in enumerate(questions):
            started = time.perf_counter()
            seen_token = None
            with client.stream("POST", base + "/chat/stream", json={"message": f"{q} ({i})"}) as r:
                r.raise_for_status()
                for line in r.iter_lines():
                    if line == "event: token" and seen_token is None:
                        seen_token = time.perf_counter() - started
                    if line == "event: done":
                        break
            total.append((time.perf_counter() - started) * 1000)
            first.append((seen_token or 0.0) * 1000)
    return {"first_token_p50_ms": round(pct(first, 50), 1), "total_p50_ms": round(pct(total, 50), 1),
            "first_over_total": round(pct(first, 50) / pct(total, 50), 2)}


def bench_ttft(env: dict[str, str], questions: list[str]) -> dict[str, Any]:
    """Time to first token beside total latency, extractive and LLM mode. LLM mode talks to the local
    stand-in server (evals/llm_stub.py), generating a word every 20 ms, as a small local model would."""
    import uvicorn

    from evals.llm_stub import chat_completions_app

    out: dict[str, Any] = {}
    stub_port = free_port()
    stub = uvicorn.Server(uvicorn.Config(chat_completions_app(token_delay=0.02, passages=3)[0], host="127.0.0.1",
                                         port=stub_port, log_level="warning"))
    thread = threading.Thread(target=stub.run, daemon=True)
    thread.start()
    try:
        for mode, extra in [("extractive", {}), ("llm", {"STRIDE_LLM_BASE_URL": f"http://127.0.0.1:{stub_port}/v1",
                                                          "STRIDE_LLM_MODEL": "stub"})]:
            with stride_serve({**env, "STRIDE_RATE_LIMIT_CHAT": "", **extra}, cwd=HERE) as served:
                out[mode] = stream_timings(served.base, questions)
    finally:
        stub.should_exit = True
        thread.join(timeout=10)
    return out


def bench_langchain_anchor() -> dict[str, Any]:
    """The textbook LangChain similarity_search on the same machine (in-process, no HTTP)."""
    from evals.baseline import LangChainBaseline
    from ingest.corpus import raw_texts
    from ingest.embedding import load_embeddings
    from ingest.settings import load_settings

    settings = load_settings()
    embeddings = load_embeddings(settings.embedding_model)
    baseline = LangChainBaseline(raw_texts(settings.corpus_dir, settings.max_file_bytes), embeddings)
    questions = [i.question for i in load_items("all")]
    baseline.store.similarity_search(questions[0], k=5)
    times = []
    for i, q in enumerate(questions):
        t = time.perf_counter()
        baseline.store.similarity_search(f"{q} ({i})", k=5)
        times.append((time.perf_counter() - t) * 1000)
    return {"similarity_search_ms": {"p50": round(pct(times, 50), 1), "p95": round(pct(times, 95), 1)}}


def bench_live_update(env: dict[str, str], seconds: float = 60.0) -> dict[str, Any]:
    """16 clients for ``seconds`` while an article is added, one deleted and the index rebuilt (issue 11)."""
    with tempfile.TemporaryDirectory(prefix="stride-live-") as tmp:
        data, corpus = Path(tmp) / "data", Path(tmp) / "corpus"
        shutil.copytree(env["STRIDE_DATA_DIR"], data, symlinks=True)
        shutil.copytree(HERE / "corpus", corpus)
        live_env = {**env, "STRIDE_DATA_DIR": str(data), "STRIDE_CORPUS_DIR": str(corpus), "STRIDE_RATE_LIMIT_CHAT": ""}
        questions = [i.question for i in load_items("dev") if i.answerable and not i.history]
        with stride_serve(live_env, cwd=HERE) as served:
            return run_live_update([served.base], corpus, live_env, questions, duration=seconds, cwd=HERE).summary()


def main() -> None:
    from rich.console import Console
    from rich.table import Table

    out: dict[str, Any] = {"machine": {"cpus": os.cpu_count()}}
    with tempfile.TemporaryDirectory(prefix="stride-bench-") as tmp:
        env = {**os.environ, "STRIDE_DATA_DIR": str(Path(tmp) / "data")}
        cold, report = timed_ingest(env)
        noop, noop_report = timed_ingest(env)
        chunks = report["num_added"]
        out["ingest"] = {"cold_seconds": round(cold, 2), "noop_seconds": round(noop, 2), "chunks": chunks,
                         "chunks_per_second": round(chunks / cold, 1), "noop_added": noop_report["num_added"]}
        out["service"] = bench_service(env)
        out["streaming"] = bench_ttft(env, [i.question for i in load_items("test") if i.answerable][:30])
        out["coverage"] = bench_coverage(env)
        out["live_update"] = bench_live_update(env)
        out["anchor"] = bench_langchain_anchor()
    chat_p50 = out["service"]["chat_ms"]["p50"]
    out["anchor"]["chat_p50_over_similarity_search_p50"] = round(
        chat_p50 / out["anchor"]["similarity_search_ms"]["p50"], 2
    )

    t = Table(title="stride bench")
    t.add_column("measure")
    t.add_column("value", justify="right")
    t.add_column("target", justify="right")
    s, i, live = out["service"], out["ingest"], out["live_update"]
    rows = [
        ("cold full ingest (model load included)", f"{i['cold_seconds']} s", "≤ 15 s"),
        ("no-op re-ingest", f"{i['noop_seconds']} s", "≤ 3 s"),
        ("chunks per second (cold)", f"{i['chunks_per_second']}", ""),
        ("ready after start", f"{s['ready_seconds']} s", "≤ 8 s"),
        ("/chat p50 / p95 (HTTP, warm, uncached)", f"{s['chat_ms']['p50']} / {s['chat_ms']['p95']} ms", "≤ 25 / 60 ms"),
        ("/search p50 / p95", f"{s['search_ms']['p50']} / {s['search_ms']['p95']} ms", ""),
        ("16 clients, unique questions", f"{s['throughput_16_clients']['unique_questions_rps']} req/s, "
         f"{s['throughput_16_clients']['unique_errors']} errors", "≥ 60 req/s, 0 errors"),
        ("16 clients, repeated questions", f"{s['throughput_16_clients']['repeated_questions_rps']} req/s, "
         f"{s['throughput_16_clients']['repeated_errors']} errors", ""),
        ("64 clients (4 in flight, 16 queued): answered / shed / dropped",
         f"{s['clients_64']['statuses'].get('200', 0)} / {s['clients_64']['statuses'].get('503', 0)} / "
         f"{s['clients_64']['statuses'].get('error', 0)}", "0 dropped"),
        ("  answered p95", f"{s['clients_64']['answered_p95_ms']} ms", ""),
        *[(f"  {c['clients']} clients: req/s, p95 (answered / shed)", f"{c['rps']} req/s, {c['p95_ms']} ms "
           f"({c['answered']} / {c['shed']})", "") for c in s["concurrency_curve"]],
        ("server RSS / peak", f"{s['rss_mb']} / {s['peak_rss_mb']} MB", "≤ 1200 MB"),
        (f"write lock held {s['stalled_lock']['lock_seconds']:.0f} s: /healthz p95",
         f"{s['stalled_lock']['healthz_p95_ms']} ms", "≤ 100 ms"),
        ("  /chat p95, 50 at once (answered) / one at a time",
         f"{s['stalled_lock']['chat_burst_p95_ms']} / {s['stalled_lock']['chat_paced_p95_ms']} ms", "≤ 100 ms"),
        ("  of the 50 at once, shed with 503", f"{s['stalled_lock']['chat_burst_shed']}", ""),
        ("  the same 50 with no lock: answered p95 / shed",
         f"{s['stalled_lock']['chat_burst_unlocked_p95_ms']} ms / {s['stalled_lock']['chat_burst_unlocked_shed']}",
         "lock adds ~0"),
        ("  query-log rows after release",
         f"{s['stalled_lock']['rows_logged']} of {s['stalled_lock']['rows_expected']}", "none lost"),
        *[(f"/chat/stream {mode}: first token / whole answer (p50)",
           f"{t['first_token_p50_ms']} / {t['total_p50_ms']} ms ({t['first_over_total']})",
           "< 0.5 of total" if mode == "llm" else "") for mode, t in out["streaming"].items()],
        (f"/coverage at {out['coverage']['logged_queries']} logged queries: first view right after start "
         "(waits for the background build)", f"{out['coverage']['first_view']} s", ""),
        ("  unchanged / after 100 new questions",
         f"{out['coverage']['unchanged_view']} / {out['coverage']['view_after_100_new']} s", "≤ 2 s"),
        (f"{live['clients']} clients for {out['live_update']['seconds']} s while an article is added, "
         "one deleted, the index rebuilt: answers / errors / unpublished versions",
         f"{live['answers']} / {live['errors']} / {live['invalid_versions']}",
         "0 errors"),
        ("  new article answerable / deleted one 404, after publish",
         f"{live['new_article_answerable_after_s']} / {live['deleted_article_404_after_s']} s",
         "≤ 5 s"),
        ("LangChain similarity_search p50 / p95", f"{out['anchor']['similarity_search_ms']['p50']} / "
         f"{out['anchor']['similarity_search_ms']['p95']} ms", "anchor"),
        ("/chat p50 ÷ similarity_search p50", f"{out['anchor']['chat_p50_over_similarity_search_p50']}×", ""),
    ]
    for r in rows:
        t.add_row(*r)
    Console().print(t)
    path = HERE / "artifacts" / "bench.json"
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps(out, indent=1))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
