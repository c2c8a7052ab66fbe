"""The index on a real Chroma server (`chroma run`): ingest publishes versions there, replicas read and
follow them, nothing in use is deleted, and a server that is away is one line at start and a 503 later."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from evals.serving import STRIDE, free_port
from ingest.chroma_server import ChromaServer, sentence_collection
from ingest.errors import IndexUnavailable, StrideError
from ingest.pipeline import run_ingest
from ingest.settings import Settings
from service.answering.engine import Engine
from service.answering.retrieval import STORE_ATTEMPTS, SearchIndex
from service.api.app import create_app
from tests.chroma_support import ChromaProcess, chroma_run
from tests.conftest import held_by_another_thread, wait_ready
from tests.fakes import build_fake_engine, fake_embeddings_factory

NEW = "# Tibialis Drills\n\nThe tibialis posterior holds up the arch. Seated band inversions train the tibialis.\n"


@pytest.fixture
def chroma(tmp_path: Path) -> Iterator[str]:
    with chroma_run(tmp_path / "chroma-server") as url:
        yield url


@pytest.fixture
def on_server(settings: Settings, chroma: str) -> Settings:
    s = settings.model_copy(update={"chroma_url": chroma, "abstain_threshold": 0.05, "reload_poll_s": 0.1,
                                    "rate_limit_chat": ""})
    run_ingest(s, embeddings_factory=fake_embeddings_factory())
    return s


def ingest(settings: Settings, **kw: object) -> None:
    run_ingest(settings, embeddings_factory=fake_embeddings_factory(), **kw)  # type: ignore[arg-type]


def eventually(check, timeout: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def test_an_index_on_the_server_answers_with_verbatim_citations(on_server: Settings) -> None:
    engine = build_fake_engine(on_server)
    result = engine.chat("How do I do a clamshell?")
    assert result.citations and not result.abstained
    for c in result.citations:
        assert c.quote in engine.article(c.article_id).text  # type: ignore[union-attr]
    assert not (on_server.data_dir / "index").exists()  # nothing local: a replica needs only the server
    server = ChromaServer.connect(on_server.chroma_url)  # type: ignore[arg-type]
    published = server.current_id()
    ingest(on_server)  # nothing changed: nothing embedded, nothing published
    assert server.current_id() == published == engine.version_id
    engine.close()


def test_two_replicas_serve_one_version_and_both_follow_an_ingest(on_server: Settings) -> None:
    app_a = create_app(on_server, engine_factory=build_fake_engine)
    app_b = create_app(on_server, engine_factory=build_fake_engine)
    with TestClient(app_a) as a, TestClient(app_b) as b:
        wait_ready(a)
        wait_ready(b)
        assert a.get("/readyz").json()["index_version"] == b.get("/readyz").json()["index_version"]
        (on_server.corpus_dir / "900_tibialis.md").write_text(NEW, encoding="utf-8")
        (on_server.corpus_dir / "003_c92f3383a1a91ea7.txt").unlink()
        ingest(on_server)
        for replica in (a, b):
            eventually(lambda r=replica: r.get("/articles/900-tibialis").status_code == 200)  # type: ignore[misc]
            assert replica.get("/articles/does-running-help-hamstrings").status_code == 404
            answer = replica.post("/chat", json={"message": "seated band inversions for the tibialis"}).json()
            assert any(c["article_id"] == "900-tibialis" for c in answer["citations"])
        assert a.get("/readyz").json()["index_version"] == b.get("/readyz").json()["index_version"]


def test_a_version_a_replica_holds_survives_ingests_and_goes_once_released(on_server: Settings) -> None:
    server = ChromaServer(on_server.chroma_url, ChromaServer.connect(on_server.chroma_url).client,  # type: ignore[arg-type]
                          grace_s=0)
    held = build_fake_engine(on_server)
    first = held.version_id
    ingest(on_server, rebuild=True)  # a new generation: the old collections would go with an unheld version
    ingest(on_server, rebuild=True)
    with server.publisher_lock():
        in_use = server.collect_garbage()
    assert first in in_use and server.read_version(first) is not None
    assert held.chat("Which muscles does running work?").citations  # its chunks and sentences are all there
    held.close()
    with server.publisher_lock():
        assert server.collect_garbage() == []
    assert server.read_version(first) is None
    names = {c.name for c in server.client.list_collections()}
    assert names == {"stride_meta", "stride_chunks_g3", "stride_sentences_g3"}  # only the current generation


def test_a_second_publisher_is_turned_away_with_one_line(on_server: Settings) -> None:
    server = ChromaServer.connect(on_server.chroma_url)  # type: ignore[arg-type]
    with held_by_another_thread(server.publisher_lock, hold_s=10):
        (on_server.corpus_dir / "900_tibialis.md").write_text(NEW, encoding="utf-8")  # something to publish
        with pytest.raises(StrideError, match=r"another `stride ingest`.*wait for it to finish") as err:
            ingest(on_server)
        assert "\n" not in str(err.value)


def test_an_unreachable_chroma_server_is_one_line_at_start(settings: Settings) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    env = {"STRIDE_DATA_DIR": str(settings.data_dir), "STRIDE_CORPUS_DIR": str(settings.corpus_dir),
           "STRIDE_CHROMA_URL": url}
    for command in (["serve", "--port", str(free_port())], ["ingest"]):
        done = subprocess.run([*STRIDE, *command], env={**os.environ, **env}, capture_output=True, text=True,
                              timeout=120)
        assert done.returncode != 0
        lines = [line for line in done.stderr.splitlines() if line.strip()]
        assert len(lines) == 1, done.stderr
        assert url in lines[0] and "chroma run" in lines[0]


def test_a_lost_chroma_server_is_503_and_recovers_by_itself(settings: Settings, tmp_path: Path) -> None:
    chroma = ChromaProcess(tmp_path / "own-chroma")
    chroma.start()
    made: list[Engine] = []  # an engine a factory hands the app is the factory's to close

    def factory(s: Settings) -> Engine:
        made.append(build_fake_engine(s))
        return made[-1]

    try:
        s = settings.model_copy(update={"chroma_url": chroma.url, "abstain_threshold": 0.05, "rate_limit_chat": ""})
        ingest(s)
        with TestClient(create_app(s, engine_factory=factory)) as client:
            wait_ready(client)
            assert client.post("/chat", json={"message": "Which glute exercises help runners?"}).status_code == 200
            chroma.stop()
            lost = client.post("/chat", json={"message": "How do hamstrings work when running?"})
            assert lost.status_code == 503 and lost.headers["Retry-After"]
            assert "unavailable" in lost.json()["detail"] and "\n" not in lost.json()["detail"]
            eventually(lambda: client.get("/readyz").status_code == 503)
            assert client.get("/readyz").json()["status"] == "unavailable"
            chroma.start()  # the same data, the same port: no restart of Stride needed
            eventually(lambda: client.get("/readyz").status_code == 200)
            assert client.post("/chat", json={"message": "How do hamstrings work when running?"}).status_code == 200
    finally:
        for engine in made:
            engine.close()  # its lease, while the server is there to release it
        chroma.stop()


class Stumbling:
    """A real collection on the server whose first ``failures`` calls fail, as a server busy with a publish
    can fail one call and answer the next."""

    def __init__(self, real: Any, failures: int) -> None:
        self.real, self.failures = real, failures

    def __getattr__(self, name: str) -> Any:
        method = getattr(self.real, name)

        def call(**kw: Any) -> Any:
            if self.failures > 0:
                self.failures -= 1
                raise ConnectionResetError("connection reset by peer")
            return method(**kw)

        return call


def stumbling_engine(engine: Engine, settings: Settings, failures: int) -> tuple[Engine, Stumbling, Stumbling]:
    server = ChromaServer.connect(settings.chroma_url)  # type: ignore[arg-type]
    rec = server.read_version(engine.version_id)
    assert rec is not None
    index = engine.search_index
    chunks = Stumbling(index.collection, failures)
    sentences = Stumbling(server.client.get_collection(sentence_collection(rec.generation)), failures)
    flaky = SearchIndex(index.snapshot, index.lexicon, chunks, sentences=sentences, top_n=index.top_n)
    return engine.with_parts(index=flaky), chunks, sentences


def test_a_read_the_server_fails_once_is_tried_again_and_answered(on_server: Settings) -> None:
    engine = build_fake_engine(on_server)
    question = "How do I do a clamshell?"
    expected = engine.chat(question)
    flaky, chunks, sentences = stumbling_engine(engine, on_server, failures=1)
    result = flaky.chat(question)
    assert chunks.failures == 0 and sentences.failures == 0  # both failed once, and were asked again
    assert [c.quote for c in result.citations] == [c.quote for c in expected.citations] != []
    engine.close()


def test_a_server_that_keeps_failing_a_read_is_one_line_unavailable(on_server: Settings) -> None:
    engine = build_fake_engine(on_server)
    flaky, chunks, _ = stumbling_engine(engine, on_server, failures=100)
    with pytest.raises(IndexUnavailable, match=r"unavailable \(ConnectionResetError\) — try again") as err:
        flaky.chat("How do I do a clamshell?")
    assert "\n" not in str(err.value) and chunks.failures == 100 - STORE_ATTEMPTS
    engine.close()
