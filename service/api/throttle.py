"""Per-client rate limits (the ``limits`` library) and a cap on answers in flight that sheds load.

A public widget is anonymous, so a client is its address: behind a reverse proxy, run uvicorn with
``FORWARDED_ALLOW_IPS`` set to the proxy's address so it takes the caller's from ``X-Forwarded-For``."""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections import deque
from collections.abc import Callable, Collection, Mapping
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request
from limits import RateLimitItem, parse_many
from limits.storage import MemoryStorage
from limits.strategies import SlidingWindowCounterRateLimiter
from starlette.types import ASGIApp, Message, Receive, Scope, Send

OVERLOAD_RETRY_AFTER_S = 1
OVERLOADED = "Stride is answering as many questions as it can; retry in a moment"


class RateLimits:
    """Named rules ("chat" → "30/minute;300/hour"), each counted per client in process memory."""

    def __init__(self, rules: Mapping[str, str], on_reject: Callable[[str], None] = lambda _: None) -> None:
        self._rules: dict[str, list[RateLimitItem]] = {
            name: parse_many(spec) for name, spec in rules.items() if spec.strip()
        }
        self._limiter = SlidingWindowCounterRateLimiter(MemoryStorage())
        self._on_reject = on_reject

    def check(self, name: str, client: str) -> None:
        """Counts one request by ``client`` against rule ``name``; 429 with Retry-After when over."""
        for item in self._rules.get(name, ()):
            if not self._limiter.hit(item, name, client):
                stats = self._limiter.get_window_stats(item, name, client)
                wait = max(1, math.ceil(stats.reset_time - time.time()))
                self._on_reject("rate_limit")
                raise HTTPException(
                    status_code=429,
                    detail=f"too many {name} requests from this client (limit {item}); retry in {wait} s",
                    headers={"Retry-After": str(wait)},
                )


def client_of(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def rate_limited(name: str) -> object:
    """A route dependency counting the request against rule ``name``."""

    def dependency(request: Request) -> None:
        limits: RateLimits = request.app.state.stride.rate_limits
        limits.check(name, client_of(request))

    return Depends(dependency)


ChatLimit = Annotated[None, rate_limited("chat")]
SearchLimit = Annotated[None, rate_limited("search")]
FeedbackLimit = Annotated[None, rate_limited("feedback")]


class LoadShedder:
    """ASGI middleware: at most ``limit`` requests to ``paths`` in flight (a streamed answer counts until its
    last event) and at most ``queue`` more waiting for a turn; anything past that gets 503 with Retry-After
    at once. A short burst waits its turn; a sustained overload is refused rather than queued without bound,
    so the answers that are computed stay fast. The event loop is single-threaded: plain counters are exact."""

    def __init__(self, app: ASGIApp, *, limit: int, queue: int, paths: Collection[str],
                 on_reject: Callable[[str], None] = lambda _: None,
                 error_content: Callable[[str, int, str], dict[str, Any]] = lambda _p, _s, m: {"detail": m}) -> None:
        self.app, self.limit, self.queue, self.on_reject = app, limit, queue, on_reject
        self.error_content = error_content
        self.paths = frozenset(paths)
        self.in_flight = 0
        self._turns: deque[asyncio.Future[None]] = deque()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] not in self.paths:
            await self.app(scope, receive, send)
            return
        if self.in_flight >= self.limit:
            if len(self._turns) >= self.queue:
                self.on_reject("overload")
                await _overloaded(send, self.error_content(scope["path"], 503, OVERLOADED))
                return
            turn = asyncio.get_running_loop().create_future()
            self._turns.append(turn)
            try:
                await turn  # handed a slot by a finishing request, which did not decrement in_flight
            except asyncio.CancelledError:  # the client went away while waiting
                if turn in self._turns:
                    self._turns.remove(turn)
                elif turn.done() and not turn.cancelled():
                    self._release()  # it was handed a slot it will not use: pass it on
                raise
        else:
            self.in_flight += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self._release()

    def _release(self) -> None:
        while self._turns:
            turn = self._turns.popleft()
            if not turn.done():
                turn.set_result(None)  # the slot passes straight to the next in line
                return
        self.in_flight -= 1


async def _overloaded(send: Send, content: dict[str, Any]) -> None:
    body = json.dumps(content).encode()
    start: Message = {
        "type": "http.response.start", "status": 503,
        "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                    (b"retry-after", str(OVERLOAD_RETRY_AFTER_S).encode())],
    }
    await send(start)
    await send({"type": "http.response.body", "body": body})
