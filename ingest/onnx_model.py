"""The embedding model on ONNX Runtime: exported once, locally, from the sentence-transformers folder a
package ships (nothing from a hub), and cached in the model cache directory (``Settings.models_dir()``).
Two precisions:

- ``fp32``, the model's own weights: its vectors equal PyTorch's to within float rounding (max abs difference
  ~3e-7 on the eval questions), so it is the same model to the index, at about a third of PyTorch's time per
  query on one thread here (PyTorch's eager overhead dominates a short question);
- ``int8``: faster still, but its vectors move (below), so an index it embeds is its own.

sentence-transformers' own ONNX backend needs ``optimum-onnx``, whose releases pin transformers 4.x (it
would downgrade the transformers that sentence-transformers 6 needs), so the export is done here with
``torch.onnx.export`` and onnxruntime's dynamic quantizer. Only the MatMul weights are quantized, per
channel: quantizing every op (embeddings included) moved query vectors to a mean cosine of 0.966 against
PyTorch, MatMul only to 0.994, at about a seventh of PyTorch's time per query on this machine."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
import warnings
from pathlib import Path
from typing import Any, Literal

import numpy as np

from ingest.errors import ModelMissing

log = logging.getLogger(__name__)
VARIANT = "onnx int8"  # how an int8 index records its model; fp32's vectors are PyTorch's, recorded as the model
Precision = Literal["fp32", "int8"]
EXPORT_VERSION = 1  # bump when the export changes: cached files from another version are re-made


def _fingerprint(model_dir: Path) -> str:
    """Which model folder (by its weights and configs) a cached export was made from."""
    h = hashlib.sha256(f"v{EXPORT_VERSION}".encode())
    for name in sorted(p.name for p in model_dir.iterdir() if p.is_file()):
        h.update(name.encode())
        h.update(hashlib.sha256((model_dir / name).read_bytes()).digest())
    return h.hexdigest()[:16]


def _pooling_mode(model_dir: Path) -> str:
    config = model_dir / "1_Pooling" / "config.json"
    if not config.exists():
        return "mean"
    modes = [k for k, v in json.loads(config.read_text()).items() if k.startswith("pooling_mode") and v is True]
    return "mean" if modes == ["pooling_mode_mean_tokens"] else ",".join(modes)


def export(model_dir: Path, cache_dir: Path, precision: Precision) -> Path:
    """The ONNX file of ``model_dir`` at ``precision``, made now unless a current one is cached. Written to a
    temporary name and renamed, so a crash never leaves a half-written model behind; a lock keeps two exports
    apart."""
    model_dir, cache_dir = Path(model_dir), Path(cache_dir)
    if _pooling_mode(model_dir) != "mean":
        raise ModelMissing(f"the ONNX backends support mean-pooling models only; {model_dir.name} uses "
                           f"{_pooling_mode(model_dir)} — set STRIDE_EMBEDDING_BACKEND=torch")
    target = cache_dir / f"{model_dir.name}-{_fingerprint(model_dir)}-{precision}.onnx"
    if target.exists():
        return target
    with _EXPORT_LOCK:
        if target.exists():
            return target
        cache_dir.mkdir(parents=True, exist_ok=True)
        log.info("exporting %s to ONNX %s (once; cached at %s)", model_dir.name, precision, target)
        fp32 = target.with_suffix(f".fp32.{os.getpid()}.tmp")
        int8 = target.with_suffix(f".int8.{os.getpid()}.tmp")
        try:
            # The exporter and the quantizer warn about choices made on purpose here (advanced indexing,
            # no pre-processing pass); a user would only see noise.
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                logging.disable(logging.WARNING)
                try:
                    _export_fp32(model_dir, fp32)
                    if precision == "int8":
                        from onnxruntime.quantization import QuantType, quantize_dynamic

                        quantize_dynamic(str(fp32), str(int8), weight_type=QuantType.QInt8,
                                         op_types_to_quantize=["MatMul"], per_channel=True)
                finally:
                    logging.disable(logging.NOTSET)
            os.replace(int8 if precision == "int8" else fp32, target)
        finally:
            fp32.unlink(missing_ok=True)
            int8.unlink(missing_ok=True)
    return target


_EXPORT_LOCK = threading.Lock()


def _export_fp32(model_dir: Path, out: Path) -> None:
    import torch
    from transformers import AutoModel

    class Encoder(torch.nn.Module):
        # transformers 5's forward takes keywords only: the exporter passes positionals.
        def __init__(self, model: Any) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            return self.model(input_ids=input_ids, attention_mask=attention_mask,
                              token_type_ids=token_type_ids).last_hidden_state

    model = AutoModel.from_pretrained(str(model_dir)).eval()
    ids = torch.ones(2, 8, dtype=torch.long)
    axes = {0: "batch", 1: "tokens"}
    torch.onnx.export(
        Encoder(model), (ids, torch.ones_like(ids), torch.zeros_like(ids)), str(out),
        input_names=["input_ids", "attention_mask", "token_type_ids"], output_names=["last_hidden_state"],
        dynamic_axes={"input_ids": axes, "attention_mask": axes, "token_type_ids": axes, "last_hidden_state": axes},
        opset_version=17, dynamo=False,
    )


class WordPieces:
    """``tokenize(text)`` as sentence-transformers' tokenizer offers it (for usage counts)."""

    def __init__(self, tokenizer: Any) -> None:
        self._tokenizer = tokenizer

    def tokenize(self, text: str) -> list[str]:
        return list(self._tokenizer.encode(text, add_special_tokens=False).tokens)


class OnnxSentenceModel:
    """The part of ``SentenceTransformer`` Stride uses (``encode``, ``get_embedding_dimension``,
    ``tokenizer``), on ONNX Runtime: the fast tokenizer, the exported encoder, mean pooling, L2 norm."""

    def __init__(self, onnx_path: Path, model_dir: Path, threads: int | None = None) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        config = json.loads((model_dir / "sentence_bert_config.json").read_text())
        self._tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        self._tokenizer.enable_truncation(int(config.get("max_seq_length", 256)))
        self._tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
        self.tokenizer = WordPieces(self._tokenizer)
        options = ort.SessionOptions()
        # One request's encode is small: a thread per core inside it would only contend with the others.
        options.intra_op_num_threads = threads or 1
        options.inter_op_num_threads = 1
        self._session = ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])
        self._dimension = int(self.encode(["dimension probe"]).shape[1])

    def get_embedding_dimension(self) -> int:
        return self._dimension

    def encode(self, texts: list[str], batch_size: int = 32, normalize_embeddings: bool = True,
               **_: Any) -> np.ndarray:
        out = []
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))  # similar lengths pad less
        for start in range(0, len(order), batch_size):
            batch = [texts[i] for i in order[start : start + batch_size]]
            encoded = self._tokenizer.encode_batch(batch)
            ids = np.array([e.ids for e in encoded], dtype=np.int64)
            mask = np.array([e.attention_mask for e in encoded], dtype=np.int64)
            hidden = self._session.run(None, {"input_ids": ids, "attention_mask": mask,
                                              "token_type_ids": np.zeros_like(ids)})[0]
            pooled = (hidden * mask[..., None]).sum(axis=1) / np.maximum(mask.sum(axis=1, keepdims=True), 1)
            out.append(pooled.astype(np.float32))
        if not out:
            return np.zeros((0, self._dimension), dtype=np.float32)
        vectors = np.empty((len(texts), out[0].shape[1]), dtype=np.float32)
        vectors[order] = np.vstack(out)
        if normalize_embeddings:
            vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
        return vectors
