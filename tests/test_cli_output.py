"""What a user sees in the terminal: `stride ask` prints the answer and nothing else unless asked (-v)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from ingest.settings import Settings
from tests.servers import STRIDE

NOISE = ("Loading weights", "DEBUG bm25s")
# -v: the log, the embedding model's load among it (the default ONNX backend draws no bar of transformers';
# bm25s is loaded, not built: silent)
LOUD = ("INFO ", "loading embedding model all-MiniLM-L6-v2 (onnx-fp32)")


@pytest.fixture
def indexed_env(real_settings: Settings, stride_env: dict[str, str], tmp_path: Path) -> dict[str, str]:
    data = tmp_path / "indexed"
    shutil.copytree(real_settings.data_dir, data, symlinks=True, ignore=shutil.ignore_patterns("feedback.sqlite*"))
    return {**stride_env, "STRIDE_DATA_DIR": str(data)}


def test_ask_is_quiet_by_default_and_verbose_on_request(indexed_env: dict[str, str]) -> None:
    quiet = subprocess.run([*STRIDE, "ask", "What do the calves do when running?"], env=indexed_env,
                           capture_output=True, text=True, timeout=120)
    assert quiet.returncode == 0, quiet.stderr
    assert "[1]" in quiet.stdout and not any(n in quiet.stderr for n in NOISE), quiet.stderr
    loud = subprocess.run([*STRIDE, "-v", "ask", "What do the calves do when running?"], env=indexed_env,
                          capture_output=True, text=True, timeout=120)
    assert loud.returncode == 0 and all(n in loud.stderr for n in LOUD), loud.stderr


def test_a_command_run_in_process_leaves_the_callers_environment_as_it_found_it(
    monkeypatch: pytest.MonkeyPatch, stride_env: dict[str, str]
) -> None:
    # The quiet default hides transformers' bar through the environment; run in-process (as tests and
    # notebooks do), that must not outlive the command and silence `stride -v` processes started later.
    import os

    from typer.testing import CliRunner

    from service.cli import app

    monkeypatch.delenv("HF_HUB_DISABLE_PROGRESS_BARS", raising=False)
    before = dict(os.environ)
    result = CliRunner().invoke(app, ["feedback", "--help"], env={"STRIDE_DATA_DIR": stride_env["STRIDE_DATA_DIR"]})
    assert result.exit_code == 0, result.output
    assert dict(os.environ) == before
