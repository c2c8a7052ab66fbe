"""Feedback a team can act on: ``stride feedback`` exports, the ``/admin/feedback`` page, counts in /metrics."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from ingest.settings import Settings
from service.api.app import create_app
from service.cli import app
from service.feedback.store import FILENAME, FeedbackStore
from tests.conftest import wait_ready
from tests.fakes import build_fake_engine

QUOTE = "Endurance athletes in heavy training need 1.6–2.2g of protein per kilogram of bodyweight daily."
RESULT = {
    "answer": "Runners need 1.6–2.2g of protein per kilogram. [1]",
    "abstained": False,
    "citations": [{"n": 1, "chunk_id": "c1", "article_id": "can-runners-build-muscle",
                   "title": "Can Runners Build Muscle?", "section": "Nutrition > Protein", "quote": QUOTE,
                   "start": 10, "end": 10 + len(QUOTE)}],
    "provenance": {"index_version": "v-test", "confidence": 0.7},
}


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, database: Path | str) -> Path:
    """A store with an old thumbs-down, a recent thumbs-down with a comment and a recent thumbs-up: the SQLite
    file in the data dir, or the PostgreSQL database that STRIDE_DATABASE_URL names."""
    if isinstance(database, Path):
        database = tmp_path / FILENAME
    else:
        monkeypatch.setenv("STRIDE_DATABASE_URL", database)
    now = datetime.now(UTC)
    clock = {"now": now - timedelta(days=40)}
    store = FeedbackStore(database, clock=lambda: clock["now"])
    old = store.log_query("How much protein do I need?", [], RESULT)
    store.flush(5)
    store.add_feedback(old, -1, "too vague")
    clock["now"] = now
    down = store.log_query("What about on rest days?", [], RESULT)
    up = store.log_query("Is 2g per kg too much?", [], RESULT)
    store.flush(5)
    store.add_feedback(down, -1, "this doesn't answer rest days")
    store.add_feedback(up, 1)
    store.close()
    monkeypatch.setenv("STRIDE_DATA_DIR", str(tmp_path))
    return tmp_path


def test_csv_export_of_recent_thumbs_down_has_question_answer_quote_and_comment(data_dir: Path) -> None:
    result = CliRunner().invoke(app, ["feedback", "--rating", "down", "--since", "7"])
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert [r["question"] for r in rows] == ["What about on rest days?"]
    row = rows[0]
    assert row["rating"] == "down" and row["comment"] == "this doesn't answer rest days"
    assert row["answer"] == RESULT["answer"] and row["index_version"] == "v-test"
    assert row["sources"] == f'[1] Can Runners Build Muscle? › Nutrition > Protein: "{QUOTE}"'
    assert "1 feedback rows" in result.stderr


def test_json_export_of_everything_newest_first_to_a_file(data_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "exports" / "feedback.json"
    result = CliRunner().invoke(app, ["feedback", "--format", "json", "--out", str(out)])
    assert result.exit_code == 0, result.output
    rows = json.loads(out.read_text(encoding="utf-8"))
    assert [(r["question"], r["rating"]) for r in rows] == [
        ("Is 2g per kg too much?", "up"), ("What about on rest days?", "down"), ("How much protein do I need?", "down")]
    assert rows[0]["citations"][0]["quote"] == QUOTE


@pytest.mark.parametrize(("args", "says"), [(["--rating", "meh"], "'up' or 'down'"),
                                            (["--format", "xlsx"], "'csv' or 'json'"),
                                            (["--since", "0"], "--since")])
def test_bad_export_options_are_a_one_line_usage_error(data_dir: Path, args: list[str], says: str) -> None:
    result = CliRunner().invoke(app, ["feedback", *args])
    assert result.exit_code == 2 and says in result.output


def test_an_empty_store_exports_a_header_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STRIDE_DATA_DIR", str(tmp_path / "never-served"))
    result = CliRunner().invoke(app, ["feedback"])
    assert result.exit_code == 0 and result.stdout.splitlines() == [
        "ts,rating,comment,question,answer,sources,query_id,index_version"]
    assert not (tmp_path / "never-served").exists()  # exporting never creates a store


def test_admin_page_lists_thumbs_down_with_sources_and_metrics_count_ratings(fake_settings: Settings) -> None:
    settings = fake_settings.model_copy(update={"admin_api_key": "k"})
    with TestClient(create_app(settings, engine_factory=build_fake_engine)) as client:
        wait_ready(client)
        assert client.get("/admin/feedback").status_code == 401
        down = client.post("/chat", json={"message": "What do the glutes do when running?"})
        up = client.post("/chat", json={"message": "What do calves do?"})
        client.post("/feedback", json={"query_id": down.headers["x-stride-query-id"], "rating": "down",
                                       "comment": "<b>missing the glute med</b>"})
        client.post("/feedback", json={"query_id": up.headers["x-stride-query-id"], "rating": "up"})
        page = client.get("/admin/feedback", headers={"X-Admin-Key": "k"})
        metrics = client.get("/metrics").text
    assert page.status_code == 200 and page.headers["cache-control"] == "no-store"
    assert "What do the glutes do when running?" in page.text and "What do calves do?" not in page.text
    assert "&lt;b&gt;missing the glute med&lt;/b&gt;" in page.text  # the comment is escaped, never markup
    first_quote = down.json()["citations"][0]["quote"]
    assert first_quote.split("\n")[0].replace("'", "&#39;").replace('"', "&#34;") in page.text
    assert 'stride_feedback_total{rating="down"} 1.0' in metrics and 'stride_feedback_total{rating="up"} 1.0' in metrics
