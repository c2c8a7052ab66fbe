"""`stride ingest` as a user runs it: in-process for the output contract, as a real process for crashes."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from evals.serving import STRIDE
from ingest.settings import Settings
from ingest.store import open_index
from service.cli import Wiring, app
from tests.fakes import fake_embeddings_factory


def test_ingest_json_last_line_has_the_counts(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STRIDE_DATA_DIR", str(settings.data_dir))
    fake = Wiring(embeddings_factory=fake_embeddings_factory())
    runner = CliRunner()
    first = runner.invoke(app, ["ingest", "--corpus", str(settings.corpus_dir), "--json"], obj=fake)
    assert first.exit_code == 0, first.output
    second = runner.invoke(app, ["ingest", "--corpus", str(settings.corpus_dir), "--json"], obj=fake)
    summary = json.loads(second.stdout.strip().splitlines()[-1])
    assert {k: summary[k] for k in ("num_added", "num_updated", "num_deleted")} == {
        "num_added": 0, "num_updated": 0, "num_deleted": 0}
    assert summary["num_skipped"] > 0
    assert set(summary["articles"]) == {
        "what-muscles-does-running-work", "can-runners-build-muscle", "strength-exercises-for-runners",
        "does-running-help-hamstrings", "hip-strengthening-exercises-for-runners"}


def test_bad_corpus_is_one_line_and_nonzero_exit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STRIDE_DATA_DIR", str(tmp_path / "data"))
    corpus = tmp_path / "c"
    corpus.mkdir()
    (corpus / "a.txt").write_bytes(b"\xff\xfe\x00bad")
    result = CliRunner().invoke(app, ["ingest", "--corpus", str(corpus)])
    assert result.exit_code == 1
    assert result.stderr.strip().count("\n") == 0
    assert "a.txt" in result.stderr and "error:" in result.stderr


def _start(env: dict[str, str], corpus: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [*STRIDE, "-v", "ingest", "--corpus", str(corpus), "--json"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def _kill_while_embedding(proc: subprocess.Popen, sig: int) -> str:
    assert proc.stderr is not None
    seen = ""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        seen += line
        if "embedding " in line or not line:
            break
    time.sleep(2.0)  # into writing the new chunks
    assert proc.poll() is None, "ingest finished before it could be interrupted; grow the corpus"
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    return seen + err


def test_killed_ingest_leaves_previous_index_and_next_run_completes(
    settings: Settings, stride_env: dict[str, str]
) -> None:
    env = stride_env
    done = subprocess.run([*STRIDE, "ingest", "--corpus", str(settings.corpus_dir), "--json"],
                          env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    before = open_index(settings.data_dir, settings.embedding_model)

    # Enough new text that embedding takes several seconds, so the signals land mid-write.
    for path in sorted(settings.corpus_dir.glob("*.txt")):
        text = path.read_text(encoding="utf-8")
        for i in range(8):
            (settings.corpus_dir / f"copy{i}-{path.name}").write_text(f"Copy {i}\n\n{text}", encoding="utf-8")

    out = _kill_while_embedding(_start(env, settings.corpus_dir), signal.SIGINT)
    assert "previous index is intact" in out
    after_int = open_index(settings.data_dir, settings.embedding_model)
    assert after_int.version == before.version
    assert {c.chunk_id for c in after_int.chunks} == {c.chunk_id for c in before.chunks}

    proc = _start(env, settings.corpus_dir)
    _kill_while_embedding(proc, signal.SIGKILL)
    assert proc.returncode == -signal.SIGKILL
    after_kill = open_index(settings.data_dir, settings.embedding_model)
    assert after_kill.version == before.version
    assert len(after_kill.chunks) == len(before.chunks)

    final = subprocess.run([*STRIDE, "ingest", "--corpus", str(settings.corpus_dir), "--json"],
                           env=env, capture_output=True, text=True, timeout=600)
    assert final.returncode == 0, final.stderr
    summary = json.loads(final.stdout.strip().splitlines()[-1])
    assert summary["num_deleted"] == 0  # nothing of the old version needed removing
    index = open_index(settings.data_dir, settings.embedding_model)
    assert len(index.articles) == 45
    assert len(index.chunks) == index.manifest.num_chunks
    again = subprocess.run([*STRIDE, "ingest", "--corpus", str(settings.corpus_dir), "--json"],
                           env=env, capture_output=True, text=True, timeout=300)
    assert json.loads(again.stdout.strip().splitlines()[-1])["num_added"] == 0
