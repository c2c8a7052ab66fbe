"""Per-client rate limits (429 + Retry-After) and the cap on answers in flight (503 + Retry-After)."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from fastapi.testclient import TestClient

from ingest.settings import Settings, SettingsInvalid, load_settings
from service.api.app import create_app
from tests.conftest import clear_of_a_minute_edge, wait_ready
from tests.fakes import build_fake_engine
from tests.servers import serve

QUESTION = {"message": "What do the glutes do when running?"}


def _limited(client: TestClient, method: str, path: str, body: dict[str, object] | None, n: int) -> list[int]:
    return [client.request(method, path, json=body).status_code for _ in range(n)]


def test_the_shipped_defaults_throttle_a_script_hammering_chat(fake_settings: Settings) -> None:
    shipped = Settings(_env_file=None)  # type: ignore[call-arg]
    settings = fake_settings.model_copy(update={"rate_limit_chat": shipped.rate_limit_chat})
    with TestClient(create_app(settings, engine_factory=build_fake_engine)) as client:
        wait_ready(client)
        clear_of_a_minute_edge()
        statuses = _limited(client, "POST", "/chat", QUESTION, 25)
        over = client.post("/chat/stream", json=QUESTION)  # the stream shares the chat allowance
    assert statuses[:20] == [200] * 20 and statuses[20:] == [429] * 5
    assert over.status_code == 429
    assert int(over.headers["Retry-After"]) >= 1
    assert "too many chat requests" in over.json()["detail"]


def test_each_client_and_each_route_has_its_own_allowance(fake_settings: Settings) -> None:
    settings = fake_settings.model_copy(update={
        "rate_limit_chat": "3/minute", "rate_limit_search": "2/minute", "rate_limit_feedback": "1/minute"})
    app = create_app(settings, engine_factory=build_fake_engine)
    with TestClient(app, client=("203.0.113.7", 5000)) as first:
        wait_ready(first)
        clear_of_a_minute_edge()
        second = TestClient(app, client=("198.51.100.9", 5000))  # another reader of the same server
        assert _limited(first, "POST", "/chat", QUESTION, 4) == [200, 200, 200, 429]
        assert _limited(second, "POST", "/chat", QUESTION, 1) == [200]
        assert _limited(first, "POST", "/search", {"query": "glutes"}, 3) == [200, 200, 429]
        query_id = first.post("/chat", json=QUESTION).headers.get("X-Stride-Query-Id")
        assert query_id is None  # that /chat was refused: nothing logged, no id
        fid = second.post("/chat", json=QUESTION).headers["X-Stride-Query-Id"]
        assert _limited(second, "POST", "/feedback", {"query_id": fid, "rating": "up"}, 2) == [200, 429]
        # Health, readiness, metrics and the articles are never limited.
        assert all(first.get(p).status_code == 200 for p in ["/healthz", "/readyz", "/articles"] * 10)
        metrics = first.get("/metrics").text
    assert 'stride_rejected_total{reason="rate_limit"} 4.0' in metrics


def test_an_empty_limit_turns_it_off(fake_settings: Settings) -> None:
    settings = fake_settings.model_copy(update={"rate_limit_search": ""})
    with TestClient(create_app(settings, engine_factory=build_fake_engine)) as client:
        wait_ready(client)
        assert set(_limited(client, "POST", "/search", {"query": "calves"}, 70)) == {200}


@pytest.mark.parametrize("value", ["30 per fortnight", "lots", "20/minute;;x"])
def test_a_malformed_limit_is_a_one_line_settings_error(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("STRIDE_RATE_LIMIT_CHAT", value)
    with pytest.raises(SettingsInvalid) as err:
        load_settings(_env_file=None)
    message = str(err.value)
    assert "\n" not in message and message.startswith("STRIDE_RATE_LIMIT_CHAT: must look like 20/minute")


def test_answers_past_the_cap_and_its_queue_are_shed_at_once_and_health_still_answers(
        fake_settings: Settings) -> None:
    release = threading.Event()
    entered = threading.Semaphore(0)

    def blocking_engine(settings: Settings):  # type: ignore[no-untyped-def]
        engine = build_fake_engine(settings)
        answer = engine.chat

        def chat(*args, **kwargs):  # type: ignore[no-untyped-def]
            entered.release()
            release.wait(30)
            return answer(*args, **kwargs)

        engine.chat = chat  # type: ignore[method-assign]
        return engine

    settings = fake_settings.model_copy(update={"max_in_flight": 2, "max_queued": 1, "rate_limit_chat": ""})
    app = create_app(settings, engine_factory=blocking_engine)
    with serve(app, ready_path="/readyz") as base, httpx.Client(base_url=base, timeout=30) as client, \
            ThreadPoolExecutor(3) as pool:
        held = [pool.submit(client.post, "/chat", json=QUESTION) for _ in range(2)]
        assert entered.acquire(timeout=10) and entered.acquire(timeout=10)  # both answers are being computed
        queued = pool.submit(client.post, "/chat", json=QUESTION)
        time.sleep(0.3)
        assert not queued.done() and not entered.acquire(timeout=0)  # waiting its turn, not computing
        shed = [client.post(path, json=body) for path, body in
                [("/chat", QUESTION), ("/chat/stream", QUESTION), ("/search", {"query": "glutes"})]]
        health = client.get("/healthz")
        release.set()
        done = [f.result(timeout=30) for f in [*held, queued]]
        after = client.post("/chat", json=QUESTION)
        metrics = client.get("/metrics").text
    assert [r.status_code for r in shed] == [503, 503, 503]
    assert all(r.headers["Retry-After"] == "1" and "retry in a moment" in r.json()["detail"] for r in shed)
    assert health.status_code == 200
    assert [r.status_code for r in done] == [200, 200, 200] and after.status_code == 200
    assert 'stride_rejected_total{reason="overload"} 3.0' in metrics


def test_a_waiting_client_that_leaves_gives_up_its_place() -> None:
    """The queue is bookkeeping on the event loop: a request cancelled while waiting (the client went away)
    must neither keep a slot nor lose one."""
    import asyncio

    from service.api.throttle import LoadShedder

    gate = asyncio.Event()
    finished: list[str] = []

    async def app(scope, receive, send):  # type: ignore[no-untyped-def]
        await gate.wait()
        finished.append(scope["path"])

    async def scenario() -> LoadShedder:
        shedder = LoadShedder(app, limit=1, queue=2, paths={"/chat"})
        scope = {"type": "http", "path": "/chat"}
        first = asyncio.create_task(shedder(scope, None, None))  # type: ignore[arg-type]
        leaver = asyncio.create_task(shedder(scope, None, None))  # type: ignore[arg-type]
        stayer = asyncio.create_task(shedder(scope, None, None))  # type: ignore[arg-type]
        await asyncio.sleep(0.01)
        assert shedder.in_flight == 1 and len(shedder._turns) == 2
        leaver.cancel()
        await asyncio.sleep(0.01)
        assert len(shedder._turns) == 1  # its place is free at once for another request
        gate.set()
        await asyncio.gather(first, stayer)
        assert leaver.cancelled()
        return shedder

    shedder = asyncio.run(scenario())
    assert finished == ["/chat", "/chat"] and shedder.in_flight == 0 and not shedder._turns
