"""STRIDE_EMBEDDING_BACKEND=onnx: the packaged model exported locally to ONNX Runtime int8, cached under the
data dir, recorded in the index with the backend so the two are never mixed."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ingest.embedding import embeddings_for, load_embeddings
from ingest.errors import StrideError
from ingest.pipeline import run_ingest
from ingest.settings import Settings
from service.answering.engine import Engine
from tests.conftest import CORPUS


@pytest.fixture(scope="module")
def onnx_settings(real_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    data = tmp_path_factory.mktemp("onnx") / "data"
    settings = real_settings.model_copy(update={"data_dir": data, "corpus_dir": CORPUS, "embedding_backend": "onnx"})
    run_ingest(settings)
    return settings


def test_the_onnx_index_answers_with_citations_and_records_its_backend(onnx_settings: Settings) -> None:
    engine = Engine.load(onnx_settings)
    assert engine.snapshot.model == "all-MiniLM-L6-v2 (onnx int8)"
    result = engine.chat("I weigh 70 kg. How much protein do I need each day to build muscle?")
    assert "112" in result.answer and result.citations
    for c in result.citations:
        assert engine.article(c.article_id).text[c.start : c.end] == c.quote  # type: ignore[union-attr]
    assert engine.count_tokens("hamstrings") >= 1  # word pieces from the model's own tokenizer


def test_the_export_is_made_once_and_its_vectors_track_pytorch(onnx_settings: Settings) -> None:
    models = list((Path(onnx_settings.data_dir) / "models").glob("*.onnx"))
    assert len(models) == 1
    made = models[0].stat().st_mtime_ns
    onnx = embeddings_for(onnx_settings)
    questions = ["What do the glutes do when running?", "Which muscles does running work?", "How much protein?"]
    fast = np.asarray(onnx.embed_documents(questions))
    assert models[0].stat().st_mtime_ns == made  # loaded from the cache, not exported again
    torch = np.asarray(load_embeddings(onnx_settings.embedding_model).embed_documents(questions))
    assert np.allclose(np.linalg.norm(fast, axis=1), 1.0, atol=1e-5)
    assert (fast * torch).sum(axis=1).min() > 0.97  # int8 MatMuls stay close to the PyTorch vectors


def test_a_torch_server_refuses_an_onnx_index_with_one_line(onnx_settings: Settings) -> None:
    torch_settings = onnx_settings.model_copy(update={"embedding_backend": "torch"})
    with pytest.raises(StrideError) as err:
        Engine.load(torch_settings)
    message = str(err.value)
    assert "\n" not in message and "onnx int8" in message
