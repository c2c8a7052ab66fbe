"""The README documents what the code does."""

from __future__ import annotations

from ingest.settings import Settings
from tests.conftest import REPO


def test_every_setting_is_documented_with_its_env_name() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    missing = [f"STRIDE_{name.upper()}" for name in Settings.model_fields if f"STRIDE_{name.upper()}" not in readme]
    assert not missing, f"README lacks {missing}"


def test_every_cli_command_is_documented() -> None:
    from service.cli import app

    readme = (REPO / "README.md").read_text(encoding="utf-8")
    names = [c.name or c.callback.__name__ for c in app.registered_commands]
    assert all(f"stride {n}" in readme for n in names), names
