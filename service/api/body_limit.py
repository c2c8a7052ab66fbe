"""Request bodies limited on the bytes actually received, answered like every other error.

Starlette's own limit (FastAPI's ``max_body_size``) answers a declared ``Content-Length`` over the limit
with a plain-text 413 that no exception handler sees; the API promises JSON for every error, in the shape
its callers expect, and its schema says so. Here the body is counted as it arrives and cut off once it
passes the limit, raised as an HTTPException: FastAPI passes that through to the app's handlers rather
than calling it a parse error, so at most the limit's worth of bytes is ever read."""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class BodyLimit:
    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise HTTPException(status_code=413, detail=f"request body over {self.max_bytes // 1024} KB")
            return message

        await self.app(scope, counted, send)
