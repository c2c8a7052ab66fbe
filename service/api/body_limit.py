"""Request bodies limited on the bytes actually received, answered like every other error.

Starlette's own limit (FastAPI's ``max_body_size``) answers a declared ``Content-Length`` over the limit
with a plain-text 413 that no exception handler sees; the API promises ``{"detail": ...}`` JSON for every
error, and its schema says so. Here an over-long declared length is refused before the body is read, and
a chunked body is cut off once it passes the limit: raised as an HTTPException, so FastAPI passes it
through to the app's handler rather than calling it a parse error."""

from __future__ import annotations

import json

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class BodyLimit:
    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    def _detail(self) -> str:
        return f"request body over {self.max_bytes // 1024} KB"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_bytes:
            body = json.dumps({"detail": self._detail()}).encode()
            await send({"type": "http.response.start", "status": 413,
                        "headers": [(b"content-type", b"application/json"),
                                    (b"content-length", str(len(body)).encode()), (b"connection", b"close")]})
            await send({"type": "http.response.body", "body": body})
            return
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise HTTPException(status_code=413, detail=self._detail())
            return message

        await self.app(scope, counted, send)
