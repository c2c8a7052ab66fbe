"""Prometheus metrics of one app instance (its own registry, so tests can build many apps)."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, ProcessCollector
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.metrics_core import Metric

from service.feedback.writer import DROP_REASONS, QueryLogStats

_NO_QUERY_LOG = QueryLogStats(pending=0, dropped=dict.fromkeys(DROP_REASONS, 0), retries=0)


class QueryLogCollector:
    """The query-log writer's counts, read at scrape time. The writer keeps the only tally, so the
    exposed numbers cannot drift from it, and the feedback package needs no knowledge of Prometheus."""

    def __init__(self) -> None:
        self.source: Callable[[], QueryLogStats] | None = None

    def collect(self) -> Iterable[Metric]:
        stats = self.source() if self.source is not None else _NO_QUERY_LOG
        dropped = CounterMetricFamily(
            "stride_query_log_dropped",
            "Query-log rows never written, by reason (queue_full: the database was unwritable too long)",
            labels=["reason"],
        )
        for reason in DROP_REASONS:
            dropped.add_metric([reason], stats.dropped.get(reason, 0))
        yield dropped
        yield GaugeMetricFamily("stride_query_log_pending", "Query-log rows queued, not yet written",
                                value=stats.pending)
        yield CounterMetricFamily("stride_query_log_retries",
                                  "Query-log batch writes retried (database locked or unwritable)",
                                  value=stats.retries)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "stride_requests", "HTTP requests", ["route", "method", "status"], registry=self.registry
        )
        self.latency = Histogram(
            "stride_request_seconds", "HTTP request latency", ["route"], registry=self.registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
        )
        self.answers = Counter("stride_answers", "Chat answers by outcome", ["outcome"], registry=self.registry)
        self.feedback = Counter("stride_feedback", "Feedback received, by rating", ["rating"], registry=self.registry)
        for rating in ("up", "down"):
            self.feedback.labels(rating)  # both series exist from the start, at zero
        self.rejected = Counter(
            "stride_rejected", "Requests turned away: rate_limit (429) or overload (503)", ["reason"],
            registry=self.registry,
        )
        self.declines = Counter("stride_declines", "Declines by reason (low_confidence, out_of_scope)", ["reason"],
                                registry=self.registry)
        self.llm_fallbacks = Counter(
            "stride_llm_fallbacks", "LLM mode answers that fell back to extractive (endpoint error, not covered, "
            "nothing verified)", registry=self.registry)
        self.index = Gauge("stride_index_info", "The index being served (value 1)", ["version", "model"],
                           registry=self.registry)
        self.reloads = Counter("stride_index_reloads", "Newly published index versions: reloaded or failed",
                               ["outcome"], registry=self.registry)
        ProcessCollector(registry=self.registry)  # memory, CPU, open files: the standard process metrics
        self.query_log = QueryLogCollector()  # zeros until a store is attached: the series always exist
        self.registry.register(self.query_log)

    def serving(self, version: str, model: str) -> None:
        self.index.clear()
        self.index.labels(version, model).set(1)

    def reload(self, outcome: str) -> None:
        self.reloads.labels(outcome).inc()

    def reject(self, reason: str) -> None:
        self.rejected.labels(reason).inc()

    def watch_query_log(self, stats: Callable[[], QueryLogStats]) -> None:
        """Expose the query-log writer's pending/dropped/retried counts (``FeedbackStore.query_log_stats``)."""
        self.query_log.source = stats
