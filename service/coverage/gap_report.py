"""The gaps report as data: what the page, the CSV/JSON exports, the CLI and ``GET /coverage/gaps.json``
all show. Times are UTC, ISO 8601."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from service.coverage.asks import Direction
from service.coverage.classify import GapClass
from service.coverage.marks import MarkStatus


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True)


class NearestSection(_Frozen):
    """The passage the cluster's questions come closest to, and how close (mean cosine of its questions)."""

    article_id: str
    title: str
    section: str
    similarity: float


class TrendInfo(_Frozen):
    last_7_days: int
    last_30_days: int
    daily: list[int] = Field(description="Asks per day over the last 30 days, oldest first.")
    direction: Direction


class MarkInfo(_Frozen):
    status: MarkStatus
    note: str | None
    marked_at: str
    index_version: str = Field(description="The index when it was marked.")


class ClosureInfo(_Frozen):
    """For a cluster marked written: its sampled questions asked again of the current index."""

    state: Literal["waiting", "closed", "open"] = Field(
        description="waiting: no ingest since it was marked; closed: most of the sample is now answered.")
    index_version: str
    asked: int
    answered: int
    article_id: str | None = Field(None, description="The article the answers cite most.")
    title: str | None = None


class GapQuestionRow(_Frozen):
    question: str
    gap_class: GapClass
    asked: int = Field(description="Times asked, repeats within minutes counted once.")
    declined: int
    low_confidence: int
    lowest_confidence: float | None
    sources: list[Literal["log", "file"]]
    first_seen: str | None = Field(None, description="None for questions only in the questions file.")
    last_seen: str | None = None
    answered_now: bool = Field(description="The current index answers it.")


class GapCluster(_Frozen):
    id: str = Field(description="Stable while the cluster's questions remain; mark it by this id.")
    rank: int
    label: str = Field(description="The cluster's most central question.")
    gap_class: GapClass
    asked: int
    distinct: int
    declined: int
    low_confidence: int
    first_seen: str | None
    last_seen: str | None
    trend: TrendInfo
    nearest: NearestSection | None
    questions: list[GapQuestionRow]
    mark: MarkInfo | None = None
    closure: ClosureInfo | None = None


class ClassTally(_Frozen):
    gap_class: GapClass
    label: str
    questions: int
    asked: int


class LogSummary(_Frozen):
    available: bool = Field(description="False when the query log could not be read.")
    empty: bool
    logged: int
    declined: int
    low_confidence: int
    repeats: int = Field(description="Asks dropped as repeats of an ask minutes earlier.")


class FileSummary(_Frozen):
    path: str | None
    questions: int
    distinct: int
    declined: int
    low_confidence: int


class GapRulesInfo(_Frozen):
    gap_confidence_below: float
    related_min: float
    touched_min: float
    cluster_distance: float
    repeat_window_minutes: float
    closure_sample: int


class GapReport(_Frozen):
    generated_at: str
    index_version: str
    log: LogSummary
    file: FileSummary | None
    questions: int = Field(description="Distinct gap questions, all classes.")
    asked: int
    classes: list[ClassTally]
    clusters: list[GapCluster] = Field(description="What to write next (adjacent and partly covered), ranked.")
    off_topic: list[GapQuestionRow]
    abuse: list[GapQuestionRow]
    rules: GapRulesInfo
