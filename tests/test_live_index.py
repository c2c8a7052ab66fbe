"""Issue 11's bar: 16 clients chat with real `stride serve` processes for 60 s while three real ingests
publish an added article, a deleted one and a full rebuild. No answer fails, each names a published
version, the new article is answerable within 5 s of its publish and the deleted one is gone: with the
embedded index, and with two replicas on one real `chroma run` server."""

from __future__ import annotations

import shutil
import subprocess
from contextlib import ExitStack
from pathlib import Path

import httpx

from evals.dataset import load_items
from evals.live_update import DELETED_ID, NEW_ID, LiveUpdateReport, run_live_update
from ingest.settings import Settings
from tests.chroma_support import chroma_run
from tests.servers import STRIDE, stride_serve

QUESTIONS = [i.question for i in load_items("dev") if i.answerable and not i.history]


def check(report: LiveUpdateReport, bases: list[str]) -> None:
    print(report.summary())
    for base in bases:
        assert httpx.get(f"{base}/articles/{NEW_ID}").status_code == 200
        assert httpx.get(f"{base}/articles/{DELETED_ID}").status_code == 404
    assert report.errors == 0, report.failures
    assert report.answers > 500
    assert report.invalid_versions == 0 and len(report.published) == 4  # the start, then three publishes
    assert len(report.versions_seen) >= 3  # answers really came from the new versions
    assert report.new_answerable_after_s is not None and report.new_answerable_after_s <= 5.0
    assert report.deleted_gone_after_s is not None and report.deleted_gone_after_s <= 5.0


def test_sixteen_clients_see_no_error_while_articles_are_added_deleted_and_rebuilt(
    settings: Settings, real_settings: Settings, stride_env: dict[str, str]
) -> None:
    shutil.copytree(real_settings.data_dir, settings.data_dir, symlinks=True)  # the real index, privately
    env = {**stride_env, "STRIDE_CORPUS_DIR": str(settings.corpus_dir), "STRIDE_RATE_LIMIT_CHAT": ""}
    with stride_serve(env) as served:
        report = run_live_update([served.base], settings.corpus_dir, env, QUESTIONS, clients=16, duration=60)
        check(report, [served.base])


def test_two_replicas_on_one_chroma_server_follow_the_same_ingests(
    settings: Settings, stride_env: dict[str, str], tmp_path: Path
) -> None:
    with chroma_run(tmp_path / "chroma") as url, ExitStack() as replicas:
        env = {**stride_env, "STRIDE_CORPUS_DIR": str(settings.corpus_dir), "STRIDE_RATE_LIMIT_CHAT": "",
               "STRIDE_CHROMA_URL": url}
        subprocess.run([*STRIDE, "ingest"], env=env, check=True, capture_output=True, timeout=300)
        bases = [replicas.enter_context(stride_serve(env)).base for _ in range(2)]
        report = run_live_update(bases, settings.corpus_dir, env, QUESTIONS, clients=16, duration=60)
        check(report, bases)
