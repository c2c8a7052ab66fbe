"""A running server follows the published index: new versions are served without a restart, a version in
use is never deleted under it, and a version that fails to load leaves the old one serving."""

from __future__ import annotations

import gc
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from ingest.errors import StrideError
from ingest.pipeline import run_ingest
from ingest.settings import Settings
from ingest.store import IndexPaths, VersionLease, VersionPaths, ingest_lock
from service.api.app import create_app
from tests.conftest import held_by_another_thread, wait_ready
from tests.fakes import build_fake_engine, fake_embeddings_factory

NEW_ARTICLE = """# Tibialis Posterior Drills for Runners

The tibialis posterior supports the arch of the foot during stance.

Heel raises with a ball between the ankles train the tibialis posterior. Do three sets of fifteen slow repetitions.
"""
DELETED = ("003_c92f3383a1a91ea7.txt", "does-running-help-hamstrings")
ADMIN = {"X-Admin-Key": "k"}


def ingest(settings: Settings, **kw: Any) -> None:
    run_ingest(settings, embeddings_factory=fake_embeddings_factory(), **kw)


def staged_copy(paths: IndexPaths) -> tuple[VersionPaths, VersionPaths]:
    """The current version, and a staged copy of it ready to publish."""
    cur = paths.current()
    assert cur is not None
    staged = paths.staging()
    shutil.copytree(cur.root, staged.root)
    return cur, staged


def versions(settings: Settings) -> set[str]:
    return {p.name for p in IndexPaths.for_data_dir(settings.data_dir).versions.iterdir()}


def eventually(check: Callable[[], bool], timeout: float = 5.0) -> float:
    """Seconds until ``check()`` held; fails the test after ``timeout``."""
    start = time.monotonic()
    while not check():
        assert time.monotonic() - start < timeout, "condition not met in time"
        time.sleep(0.05)
    return time.monotonic() - start


@pytest.fixture
def live(fake_settings: Settings) -> Iterator[tuple[TestClient, Settings]]:
    settings = fake_settings.model_copy(update={"reload_poll_s": 0.1, "admin_api_key": "k", "rate_limit_chat": ""})
    with TestClient(create_app(settings, engine_factory=build_fake_engine)) as c:
        wait_ready(c)
        yield c, settings


def test_a_published_version_is_served_without_a_restart(live: tuple[TestClient, Settings]) -> None:
    client, settings = live
    before = client.get("/readyz").json()["index_version"]
    (settings.corpus_dir / "900_tibialis.md").write_text(NEW_ARTICLE, encoding="utf-8")
    (settings.corpus_dir / DELETED[0]).unlink()
    ingest(settings)

    eventually(lambda: client.get("/readyz").json()["index_version"] != before)
    assert client.get("/articles/900-tibialis").status_code == 200
    assert client.get(f"/articles/{DELETED[1]}").status_code == 404
    answer = client.post("/chat", json={"message": "How do I train the tibialis posterior?"}).json()
    assert answer["provenance"]["index_version"] == client.get("/readyz").json()["index_version"]
    assert any(c["article_id"] == "900-tibialis" for c in answer["citations"])


def test_a_rebuild_while_serving_never_pulls_files_from_under_the_server(
    live: tuple[TestClient, Settings],
) -> None:
    client, settings = live
    engine = client.app.state.stride.engine  # type: ignore[attr-defined]  # a request still in flight
    held = engine.version_id
    ingest(settings, rebuild=True)
    ingest(settings, rebuild=True)
    eventually(lambda: client.app.state.stride.engine.version_id != held)  # type: ignore[attr-defined]
    assert held in versions(settings)  # two garbage collections ran; the version in use survived both
    # The request holding the old engine finishes on it: its Chroma files are all still there.
    assert engine.chat("Which muscles does running work?").citations
    assert client.post("/chat", json={"message": "Which muscles does running work?"}).status_code == 200

    del engine
    gc.collect()
    # Once no request holds it, the server lets the version go and deletes it (no ingest is running).
    current = IndexPaths.for_data_dir(settings.data_dir).current_id()
    eventually(lambda: versions(settings) == {current})


def test_a_version_that_fails_to_load_leaves_the_old_one_serving(live: tuple[TestClient, Settings]) -> None:
    client, settings = live
    before = client.get("/readyz").json()["index_version"]
    run_ingest(settings, rebuild=True, embeddings_factory=fake_embeddings_factory(name="another-model"))
    failed = IndexPaths.for_data_dir(settings.data_dir).current_id()

    eventually(lambda: client.get("/readyz").json()["failed_version"] == failed)
    ready = client.get("/readyz").json()
    assert ready["status"] == "ready" and ready["index_version"] == before
    assert "another-model" in ready["reload_error"] and "\n" not in ready["reload_error"]
    assert client.post("/chat", json={"message": "Which muscles does running work?"}).json()["citations"]

    retried = client.post("/admin/reload", headers=ADMIN).json()
    assert retried["status"] == "failed" and retried["index_version"] == before and "another-model" in retried["detail"]

    ingest(settings, rebuild=True)  # the right model again: the next version loads and clears the error
    eventually(lambda: client.get("/readyz").json()["failed_version"] is None)
    assert client.get("/readyz").json()["reload_error"] is None
    assert 'stride_index_reloads_total{outcome="failed"}' in client.get("/metrics").text


def test_admin_reload_serves_the_new_version_at_once(fake_settings: Settings) -> None:
    settings = fake_settings.model_copy(update={"reload_poll_s": 0, "admin_api_key": "k"})
    with TestClient(create_app(settings, engine_factory=build_fake_engine)) as client:
        wait_ready(client)
        before = client.get("/readyz").json()["index_version"]
        assert client.post("/admin/reload", headers=ADMIN).json() == {
            "status": "unchanged", "index_version": before, "previous": None, "detail": None}
        (settings.corpus_dir / "900_tibialis.md").write_text(NEW_ARTICLE, encoding="utf-8")
        ingest(settings)
        time.sleep(0.3)
        assert client.get("/readyz").json()["index_version"] == before  # no polling: nothing changed yet
        reloaded = client.post("/admin/reload", headers=ADMIN).json()
        assert reloaded["status"] == "reloaded" and reloaded["previous"] == before
        assert client.get("/readyz").json()["index_version"] == reloaded["index_version"] != before
        assert client.post("/admin/reload").status_code == 401


def test_a_version_still_held_when_the_app_stops_is_let_go(fake_settings: Settings) -> None:
    settings = fake_settings.model_copy(update={"reload_poll_s": 0, "admin_api_key": "k"})
    with TestClient(create_app(settings, engine_factory=build_fake_engine)) as client:
        wait_ready(client)
        held = client.app.state.stride.engine  # type: ignore[attr-defined]  # a request that never lets go
        ingest(settings, rebuild=True)
        assert client.post("/admin/reload", headers=ADMIN).json()["status"] == "reloaded"
        assert held.search_index.open  # within its grace period, it stays open for the request
    # Shutting down closes it: its lease (and on a Chroma server, the thread renewing it) goes with the app.
    assert not held.search_index.open


def test_a_server_started_before_the_first_ingest_serves_it_once_published(settings: Settings) -> None:
    live_settings = settings.model_copy(update={"reload_poll_s": 0.1, "abstain_threshold": 0.05})
    with TestClient(create_app(live_settings, engine_factory=build_fake_engine)) as client:
        eventually(lambda: client.get("/readyz").json()["status"] == "error")
        ingest(settings)
        eventually(lambda: client.get("/readyz").status_code == 200)
        assert client.post("/search", json={"query": "hamstrings"}).json()


# --- leases on their own ------------------------------------------------------------------------------

def test_garbage_collection_keeps_a_leased_version_and_removes_it_once_released(fake_index: Settings) -> None:
    paths = IndexPaths.for_data_dir(fake_index.data_dir)
    lease = paths.lease_current()
    assert lease is not None
    ingest(fake_index, rebuild=True)
    assert lease.version.root.is_dir() and lease.version.manifest.exists()
    lease.close()
    with_lock_free = paths.collect_garbage()
    assert with_lock_free == [] and not lease.version.root.exists()


def test_a_lease_dies_with_its_process(fake_index: Settings) -> None:
    paths = IndexPaths.for_data_dir(fake_index.data_dir)
    held = paths.current()
    assert held is not None
    reader = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from pathlib import Path; from ingest.store import *;"
         "lease = VersionLease.take(VersionPaths(Path(sys.argv[1]))); print(lease is not None, flush=True);"
         "time.sleep(60)", str(held.root)],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert reader.stdout is not None and reader.stdout.readline().strip() == "True"
        ingest(fake_index, rebuild=True)
        assert held.root.is_dir()  # the other process holds it
    finally:
        reader.kill()
        reader.wait()
    assert paths.collect_garbage() == [] and not held.root.exists()  # killed, not closed: released all the same


def test_a_lease_on_a_deleted_version_is_refused(fake_index: Settings) -> None:
    paths = IndexPaths.for_data_dir(fake_index.data_dir)
    old = paths.current()
    assert old is not None
    ingest(fake_index, rebuild=True)  # old is no longer current, and no one held it: deleted
    assert not old.root.exists()
    assert VersionLease.take(old) is None
    lease = paths.lease_current()
    assert lease is not None and lease.version.root != old.root
    lease.close()


def test_an_ingest_waits_out_a_servers_clean_up_instead_of_failing(fake_index: Settings) -> None:
    # A server deletes versions it let go holding the ingest lock (LocalIndex.collect_garbage_if_idle);
    # an ingest that starts meanwhile is not "another ingest running".
    paths = IndexPaths.for_data_dir(fake_index.data_dir)
    with held_by_another_thread(lambda: ingest_lock(paths), hold_s=0.5):
        before = paths.current_id()
        ingest(fake_index, rebuild=True)
        assert paths.current_id() != before


def test_a_second_ingest_is_turned_away_with_one_line(fake_index: Settings) -> None:
    paths = IndexPaths.for_data_dir(fake_index.data_dir)
    turned_away = pytest.raises(StrideError, match=r"another `stride ingest` is running .* wait for it to finish")
    with ingest_lock(paths), turned_away as err, ingest_lock(paths, wait_s=0.2):
        pass
    assert "\n" not in str(err.value)


def test_clean_up_moves_versions_aside_under_the_lock_and_deletes_them_after(fake_index: Settings) -> None:
    paths = IndexPaths.for_data_dir(fake_index.data_dir)
    old, staged = staged_copy(paths)
    paths.publish(staged, f"{old.version_id}-next")
    with ingest_lock(paths):
        assert paths.collect_garbage() == []
        assert not old.root.exists() and (paths.root / f"trash-{old.version_id}").is_dir()
    paths.empty_trash()
    assert not list(paths.root.glob("trash-*"))


def test_publishing_the_same_content_twice_in_a_second_never_replaces_a_version(fake_index: Settings) -> None:
    paths = IndexPaths.for_data_dir(fake_index.data_dir)
    cur, staged = staged_copy(paths)
    again = paths.publish(staged, cur.version_id)
    assert again.root != cur.root and cur.manifest.exists() and again.version_id == f"{cur.version_id}-2"
