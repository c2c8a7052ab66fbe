"""What one app instance holds: settings, metrics, the feedback store and, once loaded, the engine."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from ingest.settings import Settings
from service.answering.engine import Engine
from service.api.metrics import Metrics
from service.api.throttle import RateLimits
from service.coverage.live import LiveCoverage
from service.feedback.store import FeedbackStore


@dataclass
class AppState:
    settings: Settings
    metrics: Metrics
    feedback: FeedbackStore | None
    rate_limits: RateLimits
    coverage: LiveCoverage = field(default_factory=LiveCoverage)
    engine: Engine | None = None
    error: str | None = None  # why the engine could not load
    started: float = field(default_factory=time.monotonic)
    startup_seconds: float | None = None
