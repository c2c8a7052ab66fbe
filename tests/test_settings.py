"""Settings as a site owner types them: one-line errors naming the variable, comma-separated origins."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from ingest.settings import SettingsInvalid, load_settings
from service.cli import app


@pytest.mark.parametrize(("env", "says"), [
    ({"STRIDE_FEEDBACK_RETENTION_DAYS": "0"}, "STRIDE_FEEDBACK_RETENTION_DAYS: Input should be greater than or equal"),
    ({"STRIDE_PORT": "eighty"}, "STRIDE_PORT:"),
    ({"STRIDE_CORS_ORIGINS": "[not json"}, "STRIDE_CORS_ORIGINS: must be a JSON list or comma-separated values"),
    ({"STRIDE_CHUNK_TARGET_CHARS": "2000"}, "STRIDE_CHUNK_TARGET_CHARS must be smaller than STRIDE_CHUNK_MAX_CHARS"),
])
def test_a_bad_setting_is_one_line_naming_the_variable(monkeypatch: pytest.MonkeyPatch, env: dict[str, str],
                                                       says: str) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    result = CliRunner().invoke(app, ["ask", "What do the glutes do?"])
    assert result.exit_code == 1
    assert result.stderr.strip().count("\n") == 0 and says in result.stderr, result.stderr


@pytest.mark.parametrize(("value", "origins"), [
    ("https://a.example,https://b.example", ["https://a.example", "https://b.example"]),
    (" https://a.example , https://b.example ", ["https://a.example", "https://b.example"]),
    ('["https://a.example"]', ["https://a.example"]),
    ("", []),
])
def test_cors_origins_accept_a_comma_separated_list_or_json(monkeypatch: pytest.MonkeyPatch, value: str,
                                                          origins: list[str]) -> None:
    monkeypatch.setenv("STRIDE_CORS_ORIGINS", value)
    assert load_settings().cors_origins == origins


def test_load_settings_raises_the_domain_error() -> None:
    with pytest.raises(SettingsInvalid, match="STRIDE_MAX_HISTORY_TURNS"):
        load_settings(max_history_turns=-1)
