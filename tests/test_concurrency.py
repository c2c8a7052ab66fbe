"""Shared objects under concurrent requests: the query-embedding cache, and /chat from 32 threads."""

from __future__ import annotations

import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from ingest.embedding import SentenceEmbeddings
from service.answering.engine import QueryEncoder
from tests.fakes import HashingModel


class SlowHashingModel(HashingModel):
    """Encoding releases the GIL, as a real model does, so threads interleave."""

    def encode(self, texts: list[str], **kw: object) -> np.ndarray:
        time.sleep(0)
        return super().encode(texts, **kw)


def test_the_query_cache_survives_many_threads_evicting_and_hitting_at_once() -> None:
    # Three keys through a cache of two: nearly every call is a hit racing another thread's eviction
    # (the unlocked cache raised KeyError here within a few thousand calls).
    encoder = QueryEncoder(SentenceEmbeddings("fake", model=SlowHashingModel()), size=2)
    texts = [f"question {i % 3}" for i in range(1200)]
    errors: list[BaseException] = []

    def work(offset: int) -> None:
        try:
            for t in texts[offset:] + texts[:offset]:
                assert encoder(t).shape == (256,)
        except BaseException as err:
            errors.append(err)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(16)]
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads every few bytecodes, so a check-then-act race shows up
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        sys.setswitchinterval(interval)
    assert errors == []
    assert len(encoder._cache) <= 2


def test_chat_from_32_threads_mixing_cached_and_new_questions_all_succeed(fake_settings) -> None:
    import httpx

    from service.api.app import create_app
    from tests.fakes import build_fake_engine
    from tests.servers import serve

    starters = ["What do the glutes do when running?", "How much protein should a 70kg runner eat?"]
    questions = [starters[i % 2] if i % 3 else f"Which muscles does hill running work? ({i})" for i in range(192)]
    # Limits off: this is about shared state under load, not about throttling one client.
    settings = fake_settings.model_copy(update={"rate_limit_chat": "", "max_in_flight": 64})
    app = create_app(settings, engine_factory=build_fake_engine)
    # A keep-alive slot per thread: past max_keepalive_connections, httpcore 1.0's pool closes any idle
    # connection, including one it has just handed to another thread that has not sent yet (EBADF there).
    limits = httpx.Limits(max_connections=32, max_keepalive_connections=32)
    with (serve(app, ready_path="/readyz") as base, httpx.Client(base_url=base, timeout=30, limits=limits) as client,
          ThreadPoolExecutor(32) as pool):
        statuses = list(pool.map(lambda q: client.post("/chat", json={"message": q}).status_code, questions))
        versions = {client.post("/chat", json={"message": q}).json()["provenance"]["index_version"]
                    for q in starters}
    assert statuses == [200] * len(questions)
    assert len(versions) == 1
