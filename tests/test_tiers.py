"""The fast tier is what its name says: it never loads torch or sentence-transformers. Proved by
running it for real, in a fresh interpreter, and reading which modules that session imported."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import REPO

FAST_TIER = "not model and not browser and not slow and not eval"


@pytest.fixture
def fast_tier_report(tmp_path: Path) -> Callable[..., dict[str, object]]:
    """``run(*pytest_args)``: a pytest session in a subprocess; which heavy modules it imported, and
    how many tests it collected (written by this conftest's ``pytest_sessionfinish``)."""

    def run(*args: str) -> dict[str, object]:
        report = tmp_path / "modules.json"
        done = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args],
            cwd=REPO, env={**os.environ, "STRIDE_TEST_MODULES_REPORT": str(report)},
            capture_output=True, text=True, timeout=600,
        )
        assert done.returncode == 0, done.stdout[-3000:]
        result: dict[str, object] = json.loads(report.read_text(encoding="utf-8"))
        return result

    return run


def test_fast_tier_never_imports_torch_or_sentence_transformers(fast_tier_report) -> None:
    result = fast_tier_report("-m", FAST_TIER, "tests")
    assert result["loaded"] == [], f"the fast tier imported {result['loaded']}"
    assert isinstance(result["tests"], int) and result["tests"] > 100


def test_the_check_sees_torch_when_a_test_loads_it(fast_tier_report, tmp_path: Path) -> None:
    probe = tmp_path / "test_probe.py"
    probe.write_text("def test_loads_torch():\n    import torch\n\n    assert torch.tensor([1]).sum() == 1\n")
    result = fast_tier_report("-p", "tests.conftest", "--rootdir", str(tmp_path), str(probe))
    assert "torch" in result["loaded"] and result["tests"] == 1
