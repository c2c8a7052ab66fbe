"""The ONNX backends: the packaged model exported locally to ONNX Runtime and cached in the model cache dir.
``onnx-fp32`` (the default) computes PyTorch's vectors, so either serves the other's index; ``onnx`` (int8) is
recorded in the index with its variant, so it is never mixed with the others."""

from __future__ import annotations

import os
import subprocess
import sys
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
    settings = real_settings.model_copy(update={"data_dir": data, "corpus_dir": CORPUS, "embedding_backend": "onnx",
                                                "model_cache_dir": data.parent / "models"})
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
    models = list(onnx_settings.models_dir().glob("*.onnx"))
    assert len(models) == 1 and models[0].name.endswith("-int8.onnx")
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


QUESTIONS = ["What do the glutes do when running?", "Which muscles does running work?", "How much protein?",
             "my calves hurt after runs why", "How do I do a clamshell?"]


def test_fp32_computes_pytorchs_vectors(real_settings: Settings, tmp_path: Path) -> None:
    settings = real_settings.model_copy(update={"embedding_backend": "onnx-fp32", "model_cache_dir": tmp_path})
    fp32 = embeddings_for(settings)
    assert fp32.name == settings.embedding_model  # the same model to an index: no variant recorded
    fast = np.asarray(fp32.embed_documents(QUESTIONS))
    assert [p.name.rsplit("-", 1)[1] for p in tmp_path.glob("*.onnx")] == ["fp32.onnx"]
    slow = np.asarray(load_embeddings(settings.embedding_model).embed_documents(QUESTIONS))
    assert np.abs(fast - slow).max() < 1e-5  # int8 moves vectors ~1e-2; fp32 only rounds


def test_a_torch_index_is_served_by_fp32_without_a_rebuild(real_settings: Settings,
                                                           tmp_path_factory: pytest.TempPathFactory) -> None:
    data = tmp_path_factory.mktemp("torch") / "data"
    torch_settings = real_settings.model_copy(update={"data_dir": data, "embedding_backend": "torch"})
    run_ingest(torch_settings)
    fp32_settings = torch_settings.model_copy(update={"embedding_backend": "onnx-fp32"})
    by_torch, by_fp32 = Engine.load(torch_settings), Engine.load(fp32_settings)
    for q in QUESTIONS:
        a, b = by_torch.chat(q), by_fp32.chat(q)
        assert (a.answer, a.abstained) == (b.answer, b.abstained)
        assert a.provenance.confidence == pytest.approx(b.provenance.confidence, abs=1e-4)


def test_the_default_backend_answers_without_importing_torch(real_settings: Settings) -> None:
    # A server's memory and start-up: PyTorch alone is ~300 MB and seconds of import.
    probe = ("import sys\nfrom ingest.settings import Settings\nfrom service.answering.engine import Engine\n"
             "engine = Engine.load(Settings())\nassert engine.chat('What do the glutes do?').citations\n"
             "print(sorted(m for m in ('torch', 'sentence_transformers', 'transformers') if m in sys.modules))")
    env = {**os.environ, "STRIDE_DATA_DIR": str(real_settings.data_dir), "STRIDE_CORPUS_DIR": str(CORPUS),
           "STRIDE_MODEL_CACHE_DIR": str(real_settings.models_dir())}
    done = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[]"
