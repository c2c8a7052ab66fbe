"""What every answer carries for audit: the index and model, the resolved query, what was retrieved
with which scores, the confidence against the threshold, the settings and (in LLM mode) the prompt."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

from service.answering.compose import AnswerParams
from service.answering.retrieval import RetrievalParams

Mode = Literal["extractive", "llm", "declined"]
DeclineReason = Literal["out_of_scope", "low_confidence"]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True)


class QueryInfo(_Frozen):
    resolved: str  # what was retrieved with: spelling repaired, a follow-up joined to its subject
    follow_up_of: str | None
    corrections: dict[str, str]
    concepts: list[str]  # lexicon concept ids
    answer_type: str  # what kind of answer the question wants (service.answering.question)
    focus: list[str]  # what it is about
    focus_coverage: float  # share of the focus the articles discuss beyond a passing mention
    # a yes/no or how-much question's subject word; one the articles never name lowers the confidence
    subject: str | None = None


class RetrievedChunk(_Frozen):
    chunk_id: str
    article_id: str
    score: float
    dense: float
    keyword: float


class EngineSettings(_Frozen):
    retrieval: RetrievalParams
    answering: AnswerParams
    reranker: str


class LLMInfo(_Frozen):
    prompt: str
    prompt_sha256: str
    error: str | None = None  # why this answer fell back to the extractive one


class Provenance(_Frozen):
    index_version: str
    embedding_model: str
    mode: Mode
    decline_reason: DeclineReason | None = None
    confidence: float | None = None
    abstain_threshold: float
    calibration: str
    query: QueryInfo | None = None
    retrieved: list[RetrievedChunk]
    settings: EngineSettings
    llm: LLMInfo | None = None
    latency_ms: float
