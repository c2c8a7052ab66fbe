"""``GET /coverage`` on a running server: rebuilt only when the index version or the query log moved,
and then embedding only the questions it has not seen (the first build happens in the background)."""

from __future__ import annotations

import sqlite3
import time
from typing import Any

import numpy as np
from fastapi.testclient import TestClient

from ingest.settings import Settings
from service.api.app import create_app
from service.coverage.live import LiveCoverage
from service.feedback.store import FeedbackStore
from tests.conftest import wait_ready
from tests.fakes import build_fake_engine

ADMIN = {"X-Admin-Key": "k"}


def _declined(store: FeedbackStore, question: str) -> None:
    store.log_query(question, [], {"answer": "I can't answer that from the articles.", "abstained": True,
                                   "citations": [], "provenance": {"confidence": 0.01}})


class CountingEngine:
    """Records every text the report embeds (the seam is the engine the app factory builds)."""

    def __init__(self, settings: Settings) -> None:
        self.engine = build_fake_engine(settings)
        self.embedded: list[str] = []
        encode_many = self.engine.encode_many

        def counted(texts: list[str]) -> np.ndarray:
            self.embedded.extend(texts)
            return encode_many(texts)

        self.engine.encode_many = counted  # type: ignore[method-assign]


def test_views_reuse_the_page_until_the_log_moves_and_embed_only_new_questions(fake_settings: Settings) -> None:
    settings = fake_settings.model_copy(update={"admin_api_key": "k"})
    seed = FeedbackStore(settings.data_dir / "feedback.sqlite")
    _declined(seed, "Which running shoes prevent shin splints?")
    _declined(seed, "How should I taper before a marathon?")
    seed.close()
    counting: dict[str, Any] = {}

    def factory(s: Settings) -> Any:
        counting["engine"] = CountingEngine(s)
        return counting["engine"].engine

    app = create_app(settings, engine_factory=factory)
    with TestClient(app) as client:
        wait_ready(client)
        embedded = counting["engine"].embedded
        deadline = time.monotonic() + 30
        while not embedded and time.monotonic() < deadline:  # the background build after ready
            time.sleep(0.02)
        first = client.get("/coverage", headers=ADMIN)
        assert sorted(embedded) == ["How should I taper before a marathon?",
                                    "Which running shoes prevent shin splints?"]
        assert "How should I taper before a marathon?" in first.text
        again = client.get("/coverage", headers=ADMIN)
        assert again.text == first.text and len(embedded) == 2  # nothing moved: the same page, nothing embedded

        _declined(app.state.stride.feedback, "Is cycling good cross-training for runners?")
        after = client.get("/coverage", headers=ADMIN)
    assert after.status_code == 200 and "Is cycling good cross-training for runners?" in after.text
    assert embedded[2:] == ["Is cycling good cross-training for runners?"]


def test_a_pruned_log_or_a_new_index_version_rebuilds_the_page(fake_settings: Settings) -> None:
    from ingest.pipeline import run_ingest
    from tests.fakes import fake_embeddings_factory

    engine = build_fake_engine(fake_settings)
    store = FeedbackStore(fake_settings.data_dir / "feedback.sqlite")
    try:
        _declined(store, "What should I eat the night before a race?")
        coverage = LiveCoverage()
        page = coverage.html(engine, store)
        assert "What should I eat the night before a race?" in page
        with sqlite3.connect(store.path) as other:  # another process (an analyst, a retention job) deletes it
            other.execute("DELETE FROM queries")
        pruned = coverage.html(engine, store)
        assert "What should I eat the night before a race?" not in pruned
        assert coverage.html(engine, store) is pruned  # and that page is then reused

        article = next(fake_settings.corpus_dir.glob("*.txt"))
        article.write_text(article.read_text() + "\n\nPlyometric box jumps build springy calves.\n")
        run_ingest(fake_settings, embeddings_factory=fake_embeddings_factory())
        reloaded = build_fake_engine(fake_settings)
        assert reloaded.snapshot.version != engine.snapshot.version
        rebuilt = coverage.html(reloaded, store)
        assert reloaded.snapshot.version in rebuilt and engine.snapshot.version not in rebuilt
    finally:
        store.close()
