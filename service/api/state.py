"""What one app instance holds: settings, metrics, the feedback store and, once loaded, the engine."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ingest.settings import Settings
from service.answering.engine import Engine
from service.api.metrics import Metrics
from service.api.throttle import RateLimits
from service.coverage.live import LiveCoverage
from service.feedback.store import FeedbackStore

if TYPE_CHECKING:
    from service.api.reload import ReloadOutcome


@dataclass
class AppState:
    settings: Settings
    metrics: Metrics
    feedback: FeedbackStore | None
    rate_limits: RateLimits
    coverage: LiveCoverage = field(default_factory=LiveCoverage)
    engine: Engine | None = None
    error: str | None = None  # why the engine could not load
    reload_error: str | None = None  # why the newest published version could not load (the old one serves)
    failed_version: str | None = None  # that version's id
    reload: Callable[[bool], ReloadOutcome] | None = None  # check for a new version now (POST /admin/reload)
    started: float = field(default_factory=time.monotonic)
    startup_seconds: float | None = None
