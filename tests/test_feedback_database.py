"""Where feedback lives (issue 11, "several replicas"): ``STRIDE_DATABASE_URL`` names a PostgreSQL database that
replicas share, a wrong URL is one line at start with the password masked, and unset it stays the SQLite file
a server upgraded in place keeps reading. The store's own behaviour is checked on both backends by
tests/test_feedback.py and tests/test_query_log.py (the ``database`` fixture)."""

from __future__ import annotations

import sqlite3
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr
from typer.testing import CliRunner

from ingest.settings import Settings
from service.feedback.store import FILENAME, DatabaseUnavailable, FeedbackStore, open_store
from tests.postgres_support import PASSWORD, write_lock_held
from tests.servers import free_port

SECRET = "hunter2-Secret"
RESULT = {"answer": "Quads, hamstrings, glutes and calves. [1]", "abstained": False,
          "citations": [{"n": 1, "chunk_id": "c1", "article_id": "a", "title": "T", "section": "S", "quote": "q",
                         "start": 0, "end": 1}],
          "provenance": {"index_version": "v1", "confidence": 0.71}}
DECLINED = {"answer": "The articles don't cover that.", "abstained": True, "citations": [],
            "provenance": {"index_version": "v1", "confidence": 0.12}}


def _with_url(settings: Settings, url: str) -> Settings:
    return settings.model_copy(update={"database_url": SecretStr(url)})


# --- a wrong URL: one line at start, naming the setting, never the password -----------------------------

WRONG_URLS = [
    ("not a url", "is not a database URL"),
    (f"mysql://stride:{SECRET}@db.internal/stride", "unsupported database 'mysql'"),
    (f"postgresql+asyncpg://stride:{SECRET}@db.internal/stride", "unsupported database 'postgresql+asyncpg'"),
    ("postgresql://stride:hunter2@Secret@db.internal/stride", "unencoded '@'"),
    ("sqlite://", "in-memory SQLite database"),
    (f"postgresql://stride:{SECRET}@127.0.0.1:{{port}}/stride", "Connection refused"),  # nothing listens there
    (f"postgresql://stride@127.0.0.1:{{port}}/stride?password={SECRET}", "Connection refused"),
]


@pytest.mark.parametrize(("url", "says"), WRONG_URLS)
def test_a_wrong_database_url_is_one_line_naming_the_setting_without_the_password(
        settings: Settings, url: str, says: str) -> None:
    with pytest.raises(DatabaseUnavailable) as err:
        open_store(_with_url(settings, url.format(port=free_port())))
    message = str(err.value)
    assert "\n" not in message and message.startswith("STRIDE_DATABASE_URL") and says in message, message
    assert SECRET not in message and "hunter2" not in message and "Secret@" not in message


def test_stride_serve_refuses_to_start_on_a_wrong_database_url(fake_index: Settings,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    from service.cli import app

    monkeypatch.setenv("STRIDE_DATA_DIR", str(fake_index.data_dir))
    monkeypatch.setenv("STRIDE_DATABASE_URL", f"postgresql://stride:{SECRET}@127.0.0.1:{free_port()}/stride")
    result = CliRunner().invoke(app, ["serve", "--port", str(free_port())])
    assert result.exit_code == 1, result.output
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("error: STRIDE_DATABASE_URL=postgresql+psycopg://stride:***@127.0.0.1:") and \
        "cannot connect" in line and SECRET not in result.output


def test_the_default_sqlite_file_failing_costs_only_feedback_but_a_named_one_is_an_error(
        settings: Settings, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the data directory should be")
    default = settings.model_copy(update={"data_dir": blocker / "data"})
    assert open_store(default) is None  # chat keeps answering, without feedback
    assert "feedback is not being stored" in caplog.text
    with pytest.raises(DatabaseUnavailable, match=r"^STRIDE_DATABASE_URL=sqlite:///.*: cannot open it"):
        open_store(_with_url(settings, f"sqlite:///{blocker}/data/{FILENAME}"))


def test_a_sqlite_url_names_the_file(settings: Settings, tmp_path: Path) -> None:
    path = tmp_path / "elsewhere" / "votes.sqlite"
    store = open_store(_with_url(settings, f"sqlite:///{path}"))
    assert store is not None and store.path == path
    store.add_feedback(store.log_query("q", [], RESULT), 1)
    store.close()
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT rating FROM feedback").fetchall() == [(1,)]
    assert not (settings.data_dir / FILENAME).exists()


# --- a server upgraded in place keeps reading its old SQLite file --------------------------------------

# The schema the store created before it used SQLAlchemy, verbatim.
OLD_SCHEMA = """
CREATE TABLE IF NOT EXISTS queries (
    id              TEXT PRIMARY KEY,
    ts              TEXT NOT NULL,
    question        TEXT NOT NULL,
    history_json    TEXT NOT NULL,
    answer          TEXT NOT NULL,
    abstained       INTEGER NOT NULL,
    confidence      REAL,
    citations_json  TEXT NOT NULL,
    provenance_json TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS queries_ts ON queries (ts);
CREATE TABLE IF NOT EXISTS feedback (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    ts              TEXT NOT NULL,
    query_id        TEXT NOT NULL UNIQUE,
    rating          INTEGER NOT NULL CHECK (rating IN (-1, 1)),
    comment         TEXT,
    question        TEXT NOT NULL,
    answer          TEXT NOT NULL,
    citations_json  TEXT NOT NULL,
    provenance_json TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS feedback_ts ON feedback (ts);
"""


def test_an_old_sqlite_file_is_read_and_written_as_before(tmp_path: Path) -> None:
    path = tmp_path / FILENAME
    with sqlite3.connect(path) as db:
        db.executescript(OLD_SCHEMA)
        db.execute("INSERT INTO queries VALUES ('old1', '2026-01-01T12:00:00.000000Z', 'Old question?', '[]',"
                   " 'Old answer. [1]', 0, 0.5, '[]', '{\"index_version\": \"v0\"}')")
        db.execute("INSERT INTO feedback (ts, query_id, rating, comment, question, answer, citations_json,"
                   " provenance_json) VALUES ('2026-01-01T12:01:00.000000Z', 'old1', -1, 'too short',"
                   " 'Old question?', 'Old answer. [1]', '[]', '{}')")
    before = sqlite3.connect(path).execute("SELECT sql FROM sqlite_master ORDER BY name").fetchall()
    store = FeedbackStore(path, max_queries=1)
    [old] = store.feedback()
    assert (old["query_id"], old["rating"], old["comment"], old["question"]) == ("old1", -1, "too short",
                                                                                 "Old question?")
    assert store.add_feedback("old1", 1) == old["id"]  # voting again still replaces the vote
    new = store.log_query("New question?", [], RESULT)
    assert store.flush(5)
    assert [q["id"] for q in store.queries()] == [new]  # the cap (1) kept the newest, ordered by rowid and ts
    assert store.query_log_mark()[0] == 1
    store.close()
    assert sqlite3.connect(path).execute("SELECT sql FROM sqlite_master ORDER BY name").fetchall() == before


# --- PostgreSQL: several replicas on one database --------------------------------------------------------

def test_wrong_credentials_or_database_on_a_real_server_are_one_line(postgres: Any, settings: Settings) -> None:
    postgres.create_database()
    for url, says in [(postgres.url("postgres", password=SECRET), "password authentication failed"),
                      (postgres.url("no_such_db"), 'database "no_such_db" does not exist')]:
        with pytest.raises(DatabaseUnavailable) as err:
            open_store(_with_url(settings, url))
        message = str(err.value)
        assert "\n" not in message and says in message and "STRIDE_DATABASE_URL=postgresql+psycopg://stride:***@" \
            in message
        assert SECRET not in message and PASSWORD not in message


def test_two_replicas_share_queries_and_feedback(postgres: Any) -> None:
    url = postgres.create_database()
    a, b = FeedbackStore(url), FeedbackStore(url)
    try:
        on_a = a.log_query("Asked on replica A?", [], RESULT)
        on_b = b.log_query("Asked on replica B?", [{"role": "user", "content": "hi"}], DECLINED)
        assert a.flush(5) and b.flush(5)
        first = b.add_feedback(on_a, 1, "voted on B")  # each replica votes on the other's query
        a.add_feedback(on_b, -1)
        for store in (a, b):
            assert {q["id"]: q["question"] for q in store.queries()} == {on_a: "Asked on replica A?",
                                                                         on_b: "Asked on replica B?"}
            assert {f["query_id"]: (f["rating"], f["comment"]) for f in store.feedback()} == {
                on_a: (1, "voted on B"), on_b: (-1, None)}
            assert [r["abstained"] for r in store.iter_queries()] == [False, True]
        assert a.add_feedback(on_a, -1) == first  # one row per query, whichever replica takes the vote
        assert [f["rating"] for f in b.feedback(rating=-1)] == [-1, -1]
        mark = a.query_log_mark()
        assert b.query_log_mark() == mark
        b.log_query("Another on B?", [], RESULT)
        assert b.flush(5) and a.query_log_mark() != mark  # A's coverage page sees that B logged a question
    finally:
        a.close()
        b.close()


def test_a_vote_on_a_query_still_queued_on_another_replica_waits_for_it(postgres: Any) -> None:
    url = postgres.create_database()
    a, b = FeedbackStore(url), FeedbackStore(url, lookup_wait=10)
    try:
        with write_lock_held(url):
            queued = a.log_query("Asked on A while the tables were locked?", [], RESULT)
            assert queued is not None and a.query_log_stats().pending == 1
            vote: dict[str, Any] = {}
            voter = threading.Thread(target=lambda: vote.update(id=b.add_feedback(queued, 1)))
            voter.start()
            voter.join(0.3)
            assert voter.is_alive()  # B does not say "unknown query" while A has the row in hand
        voter.join(15)
        assert isinstance(vote.get("id"), int)
        assert [f["query_id"] for f in a.feedback()] == [queued]
    finally:
        a.close()
        b.close()


def test_replicas_starting_together_create_the_tables_once(postgres: Any) -> None:
    url = postgres.create_database()
    with ThreadPoolExecutor(6) as pool:
        stores = list(pool.map(lambda _: FeedbackStore(url), range(6)))
    try:
        ids = [s.log_query(f"from replica {i}", [], RESULT) for i, s in enumerate(stores)]
        assert all(s.flush(5) for s in stores)
        assert all({q["id"] for q in s.queries()} == set(ids) for s in stores)
    finally:
        for s in stores:
            s.close()


def test_two_servers_on_one_database_take_each_others_feedback(postgres: Any, fake_settings: Settings) -> None:
    from fastapi.testclient import TestClient

    from service.api.app import create_app
    from tests.conftest import wait_ready
    from tests.fakes import build_fake_engine

    settings = _with_url(fake_settings, postgres.create_database()).model_copy(update={"admin_api_key": "k"})
    with (TestClient(create_app(settings, engine_factory=build_fake_engine)) as one,
          TestClient(create_app(settings, engine_factory=build_fake_engine)) as two):
        wait_ready(one)
        wait_ready(two)
        asked = one.post("/chat", json={"message": "What do the glutes do when running?"})
        qid = asked.headers["x-stride-query-id"]
        voted = two.post("/feedback", json={"query_id": qid, "rating": "down", "comment": "missing the glute med"})
        assert voted.status_code == 200, voted.text
        page = one.get("/admin/feedback", headers={"X-Admin-Key": "k"})
        assert "What do the glutes do when running?" in page.text and "missing the glute med" in page.text
    assert not (fake_settings.data_dir / FILENAME).exists()  # nothing went to the local SQLite file
