"""The OpenAPI schema is true: Schemathesis generates requests from it, valid and invalid, sends them to the
app and checks every response against it (status documented, body and headers as declared, content type,
no 5xx, invalid input refused, valid input accepted). A bounded number of examples per operation keeps CI
quick; the counts are printed at the end of the run."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from ingest.settings import Settings
from service.api.app import create_app
from tests.conftest import CONTRACT_CASES, CORPUS
from tests.fakes import build_fake_engine
from tests.servers import serve

EXAMPLES = 60  # per operation and generation mode


@pytest.fixture(scope="module")
def contract_server(tmp_path_factory: pytest.TempPathFactory, fake_index_template: Path) -> Iterator[str]:
    """The app served by uvicorn on a local port (Schemathesis' in-process ASGI client would run the
    app's lifespan, loading and closing everything, around every single request)."""
    data = tmp_path_factory.mktemp("contract") / "data"
    shutil.copytree(fake_index_template, data, symlinks=True)
    # Limits off: a valid request must get its 2xx here; 429 and 503 are tested in test_limits.py.
    s = Settings(data_dir=data, corpus_dir=CORPUS, abstain_threshold=0.05, rate_limit_chat="",  # type: ignore[call-arg]
                 rate_limit_search="", rate_limit_feedback="", max_in_flight=1000, _env_file=None)
    with serve(create_app(s, engine_factory=build_fake_engine), ready_path="/readyz") as base:
        yield base


def _documented() -> dict[str, Any]:
    """The schema as the app states it. Built from an app that is never started (no store, no engine),
    so collecting this module does no I/O; the test checks the running app states the same schema."""
    bare = Settings(data_dir=Path("unused"), _env_file=None)  # type: ignore[call-arg]
    return create_app(bare, feedback_factory=lambda _: None).openapi()


DOCUMENTED = _documented()
schema = schemathesis.openapi.from_dict(DOCUMENTED)


def test_the_running_app_states_the_schema_under_test(contract_server: str) -> None:
    assert httpx.get(contract_server + "/openapi.json").json() == DOCUMENTED


@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large])
def test_every_response_matches_the_openapi_schema(case: schemathesis.Case, contract_server: str) -> None:
    mode = case.meta.generation.mode.value if case.meta else "explicit"  # positive (valid) or negative
    CONTRACT_CASES[(case.operation.label, mode)] += 1
    case.call_and_validate(base_url=contract_server)


def _conforms(response: httpx.Response, method: str, path: str) -> None:
    documented = DOCUMENTED["paths"][path][method]["responses"]
    entry = documented.get(str(response.status_code))
    assert entry is not None, f"{response.status_code} is not documented for {method.upper()} {path}"
    body = response.json()
    assert set(body) == {"detail"} and isinstance(body["detail"], str) and body["detail"]
    assert entry["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/ErrorBody"}
    for header in entry.get("headers", {}):
        assert int(response.headers[header]) >= 1


def test_the_errors_schemathesis_cannot_provoke_are_documented_as_sent(fake_settings: Settings) -> None:
    """413, 429 and 503 need a big body, a busy client or a server that is not ready."""
    from fastapi.testclient import TestClient

    from ingest.errors import StrideError
    from tests.conftest import clear_of_a_minute_edge, wait_ready

    limited = fake_settings.model_copy(update={"rate_limit_chat": "1/minute"})
    with TestClient(create_app(limited, engine_factory=build_fake_engine)) as client:
        wait_ready(client)
        clear_of_a_minute_edge()
        _conforms(client.post("/chat", content=b'{"message": "' + b"x" * 300_000 + b'"}',
                              headers={"content-type": "application/json"}), "post", "/chat")
        client.post("/chat", json={"message": "What do calves do?"})
        _conforms(client.post("/chat", json={"message": "What do calves do?"}), "post", "/chat")
        _conforms(client.post("/chat/stream", json={"message": "What do calves do?"}), "post", "/chat/stream")
        _conforms(client.get("/articles/Not_A_Slug"), "get", "/articles/{article_id}")

    def no_index(_: Settings) -> Any:
        raise StrideError("no index here: run stride ingest")

    with TestClient(create_app(fake_settings, engine_factory=no_index)) as client:
        _conforms(client.post("/search", json={"query": "glutes"}), "post", "/search")
        _conforms(client.get("/articles"), "get", "/articles")
        ready = client.get("/readyz")
        assert ready.status_code == 503 and "503" in DOCUMENTED["paths"]["/readyz"]["get"]["responses"]
        assert ready.json()["status"] in {"loading", "error"}
