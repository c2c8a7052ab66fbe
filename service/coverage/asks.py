"""Each time a gap question was asked: read from the query log, repeats collapsed, and counted over time.
Pure.

A person who is not answered often asks again at once, reworded or not; that is one need, not two. The
query log records no client today, so two asks count once only when their text is the same (ignoring case,
spacing and punctuation) within ``REPEAT_WINDOW``: different people rarely type the same unanswered question
within minutes. Where a row does carry a ``client``, rewordings from that client count once too
(``near_duplicate``), and the same text from different clients counts twice.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from service.coverage.model import is_gap

REPEAT_WINDOW = timedelta(minutes=10)
TREND_DAYS = 30


def question_key(question: str) -> str:
    """What identifies a question across asks: lower case, words only ("Shin splints??" = "shin splints")."""
    return " ".join(re.findall(r"\w+", question.casefold()))


@dataclass(frozen=True)
class Ask:
    question: str
    key: str
    at: datetime | None  # None for the questions file, which has no times
    source: Literal["log", "file"]
    abstained: bool
    confidence: float | None
    client: str | None = None


@dataclass(frozen=True)
class LogStats:
    logged: int = 0
    declined: int = 0
    low_confidence: int = 0


def parse_time(ts: Any) -> datetime | None:
    if not isinstance(ts, str) or not ts:
        return None
    try:
        when = datetime.fromisoformat(ts)
    except ValueError:
        return None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def asks_from_log(rows: Iterable[Mapping[str, Any]], threshold: float, margin: float) -> tuple[list[Ask], LogStats]:
    """The gap asks in the query log (declined, or answered below threshold + margin), oldest first."""
    asks: list[Ask] = []
    logged = declined = 0
    for r in rows:
        logged += 1
        question = str(r.get("question") or "").strip()
        abstained, conf = bool(r.get("abstained")), r.get("confidence")
        if not question or not is_gap(abstained, conf, threshold, margin):
            continue
        declined += abstained
        client = r.get("client")
        asks.append(Ask(question, question_key(question), parse_time(r.get("ts")), "log", abstained, conf,
                        str(client) if client else None))
    asks.sort(key=lambda a: a.at or datetime.min.replace(tzinfo=UTC))
    return asks, LogStats(logged, declined, len(asks) - declined)


def collapse_repeats(
    asks: Sequence[Ask],
    near_duplicate: Callable[[str, str], bool] = lambda a, b: False,
    window: timedelta = REPEAT_WINDOW,
) -> list[Ask]:
    """``asks`` (oldest first) without repeats: an ask within ``window`` of an earlier ask of the same text,
    or, from the same known client, of a near-duplicate (``near_duplicate(key_a, key_b)``). A burst of
    retries collapses into its first ask, since each repeat restarts the window."""
    kept: list[Ask] = []
    recent: dict[str | None, list[tuple[str, datetime]]] = {}
    for ask in asks:
        if ask.at is None:
            kept.append(ask)
            continue
        seen = recent.setdefault(ask.client, [])
        seen[:] = [(k, t) for k, t in seen if ask.at - t <= window]
        repeat = any(k == ask.key or (ask.client is not None and near_duplicate(k, ask.key)) for k, _ in seen)
        seen.append((ask.key, ask.at))
        if not repeat:
            kept.append(ask)
    return kept


Direction = Literal["new", "rising", "steady", "falling", "quiet"]


@dataclass(frozen=True)
class Trend:
    last_7_days: int
    last_30_days: int
    daily: tuple[int, ...]  # asks per day over the last TREND_DAYS days, oldest first
    direction: Direction


def trend(times: Iterable[datetime], now: datetime, first_seen: datetime | None) -> Trend:
    """Asks over the last 7 and 30 days, and where they are heading: "rising" when the last week has at least
    two asks and half again the weekly rate of the 23 days before it, "falling" when under two thirds of it,
    "new" when first asked this week, "quiet" with no asks in 30 days."""
    daily = [0] * TREND_DAYS
    for t in times:
        age = (now - t).days
        if 0 <= age < TREND_DAYS:
            daily[TREND_DAYS - 1 - age] += 1
    last_7, last_30 = sum(daily[-7:]), sum(daily)
    before = (last_30 - last_7) * 7 / (TREND_DAYS - 7)  # the weekly rate of the earlier days
    direction: Direction
    if last_30 == 0:
        direction = "quiet"
    elif first_seen is not None and now - first_seen < timedelta(days=7):
        direction = "new"
    elif last_7 >= 2 and last_7 >= 1.5 * before:
        direction = "rising"
    elif last_7 < before * 2 / 3:
        direction = "falling"
    else:
        direction = "steady"
    return Trend(last_7, last_30, tuple(daily), direction)
