"""Shared fixtures. Test tiers are derived from the fixtures a test uses (``TIERS``), never written by
hand, so a tier cannot claim a test is cheap while it loads the model or starts a browser."""

from __future__ import annotations

import json
import os
import shutil
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

import pytest

from ingest.articles import build_article
from ingest.corpus import read_corpus
from ingest.models import Article
from ingest.settings import Settings

REPO = Path(__file__).resolve().parent.parent
CORPUS = REPO / "corpus"

# fixture -> the tiers (markers) of every test that uses it, directly or through another fixture.
TIERS: dict[str, set[str]] = {
    "real_settings": {"model"},  # the shipped corpus ingested with the real embedding model
    "stride_env": {"model", "slow"},  # real `stride` processes (which load the real model)
    "stride_server": {"model", "slow"},  # a real `stride serve` over the real index (tests/test_openai_api.py)
    "chromium": {"browser", "slow"},  # Debian's Chromium through Playwright
    "postgres": {"postgres", "slow"},  # a real PostgreSQL server from Debian's packages (tests/postgres_support.py)
    "eval_result": {"eval"},  # the eval suite on the test split
    "fast_tier_report": {"slow"},  # the fast tier run again in a subprocess (tests/test_tiers.py)
}
HEAVY_MODULES = ("torch", "sentence_transformers", "transformers")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    tiers = {t for ts in TIERS.values() for t in ts}
    for item in items:
        written = {m.name for m in item.iter_markers() if m.name in tiers}
        if written:
            raise pytest.UsageError(
                f"{item.nodeid}: tier markers {sorted(written)} are derived from fixtures; use one of {sorted(TIERS)}"
            )
        # A parametrized fixture may take the fixture it draws on as its parameter (``database``: "postgres"),
        # so that variant alone carries the tiers.
        params = getattr(getattr(item, "callspec", None), "params", {}).values()
        for name in [*getattr(item, "fixturenames", ()), *(p for p in params if isinstance(p, str))]:
            for tier in sorted(TIERS.get(name, ())):
                item.add_marker(tier)


# Schemathesis cases sent per (operation, generation mode), tests/test_contract.py; printed for CI's log.
CONTRACT_CASES: Counter[tuple[str, str]] = Counter()


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not CONTRACT_CASES:
        return
    operations = sorted({op for op, _ in CONTRACT_CASES})
    terminalreporter.write_sep("-", f"schemathesis: {sum(CONTRACT_CASES.values())} cases over "
                                    f"{len(operations)} operations")
    for op in operations:
        terminalreporter.write_line(f"  {op:32s} {CONTRACT_CASES[(op, 'positive')]:4d} valid  "
                                    f"{CONTRACT_CASES[(op, 'negative')]:4d} invalid")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """For tests/test_tiers.py: report which heavy modules this run imported."""
    report = os.environ.get("STRIDE_TEST_MODULES_REPORT")
    if report:
        loaded = sorted(m for m in sys.modules if m.split(".")[0] in HEAVY_MODULES)
        Path(report).write_text(json.dumps({"loaded": loaded, "tests": session.testscollected}), encoding="utf-8")


@pytest.fixture(scope="session")
def real_articles() -> dict[str, Article]:
    """The five shipped articles, cleaned and structured (pure stages only)."""
    return {d.article_id: build_article(d) for d in read_corpus(CORPUS, 2_000_000)}


@pytest.fixture
def corpus_dir(tmp_path: Path) -> Path:
    """A private copy of the shipped corpus that a test may edit."""
    dst = tmp_path / "corpus"
    shutil.copytree(CORPUS, dst)
    return dst


@pytest.fixture
def settings(tmp_path: Path, corpus_dir: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data", corpus_dir=corpus_dir, _env_file=None)  # type: ignore[call-arg]


# --- the fast tier: a deterministic embedder through the production path ------------------------------

@pytest.fixture(scope="session")
def fake_index_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shipped corpus ingested once with the hashing embedder; each test gets a copy."""
    from ingest.pipeline import run_ingest
    from tests.fakes import fake_embeddings_factory

    data = tmp_path_factory.mktemp("fake-index") / "data"
    run_ingest(Settings(data_dir=data, corpus_dir=CORPUS, _env_file=None),  # type: ignore[call-arg]
               embeddings_factory=fake_embeddings_factory())
    return data


@pytest.fixture
def fake_index(settings: Settings, fake_index_template: Path) -> Settings:
    """``settings`` over a private copy of the fake index (ingesting it again per test is most of a test's time)."""
    shutil.copytree(fake_index_template, settings.data_dir, symlinks=True)  # `current` is a relative link
    return settings


@contextmanager
def held_by_another_thread(lock: Callable[[], AbstractContextManager[object]], hold_s: float) -> Iterator[None]:
    """``lock()`` entered in another thread (as another process would hold it), held for ``hold_s`` seconds
    or until the block ends."""
    taken, release = threading.Event(), threading.Event()

    def hold() -> None:
        with lock():
            taken.set()
            release.wait(hold_s)

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert taken.wait(10)
        yield
    finally:
        release.set()
        holder.join()


def wait_ready(client: Any, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while client.get("/readyz").status_code != 200:
        assert time.monotonic() < deadline, client.get("/readyz").json()
        time.sleep(0.05)


def clear_of_a_minute_edge(need_s: float = 15.0) -> None:
    """Sleep past the next minute's edge when it is less than ``need_s`` away, so that requests counted
    against an N/minute limit fall inside one minute. The limiter's sliding window weighs the minute
    before at nearly 1 just after an edge, and rounds down: one more request than the limit gets
    through there (21 of 25 against 20/minute, measured), and a test straddling an edge would flake."""
    left = 60.0 - time.time() % 60.0
    if left < need_s:
        time.sleep(left + 0.05)


@pytest.fixture
def fake_settings(fake_index: Settings) -> Settings:
    # Hashed bag-of-words cosines run lower than the real model's: use the threshold override.
    return fake_index.model_copy(update={"abstain_threshold": 0.05})


@pytest.fixture
def client(fake_settings: Settings) -> Iterator[Any]:
    """A TestClient over ``create_app`` with the fake embedder, waited on until ready."""
    from fastapi.testclient import TestClient

    from service.api.app import create_app
    from tests.fakes import build_fake_engine

    with TestClient(create_app(fake_settings, engine_factory=build_fake_engine)) as c:
        wait_ready(c)
        yield c


# --- the model tier -------------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def real_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """The shipped corpus ingested once per session with the real model."""
    from ingest.pipeline import run_ingest

    data = tmp_path_factory.mktemp("real") / "data"
    s = Settings(data_dir=data, corpus_dir=CORPUS, _env_file=None)  # type: ignore[call-arg]
    run_ingest(s)
    return s


@pytest.fixture(scope="session")
def real_engine(real_settings: Settings) -> Any:
    from service.answering.engine import Engine

    return Engine.load(real_settings)


@pytest.fixture
def stride_env(settings: Settings) -> dict[str, str]:
    """The environment for real `stride` subprocesses over this test's private data dir."""
    return {**os.environ, "STRIDE_DATA_DIR": str(settings.data_dir)}


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    from tests.browser_support import launch_chromium

    with sync_playwright() as p:
        browser = launch_chromium(p)
        yield browser
        browser.close()


# --- the feedback store's databases ---------------------------------------------------------------------

@pytest.fixture(scope="session")
def postgres() -> Iterator[Any]:
    """One PostgreSQL server for the session (``tests.postgres_support.PostgresServer``)."""
    from tests.postgres_support import running_postgres

    with running_postgres() as server:
        yield server


@pytest.fixture(params=["sqlite", "postgres"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Path | str:
    """What a FeedbackStore opens: the embedded SQLite file (a path), or a new database on the test PostgreSQL
    server (a URL). Store tests take this, so every behaviour is checked on both."""
    if request.param == "sqlite":
        return tmp_path / "data" / "feedback.sqlite"
    url: str = request.getfixturevalue(request.param).create_database()
    return url
