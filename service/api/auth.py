"""Bearer keys for the programmatic surfaces (``/v1`` and ``/mcp``), from ``STRIDE_API_KEYS``.

The widget's own routes stay keyless (a browser cannot keep a secret; the CORS allowlist guards them).
With no keys configured the programmatic surfaces are open, as on a laptop."""

from __future__ import annotations

import secrets
from collections.abc import Sequence

from starlette.types import ASGIApp, Receive, Scope, Send


def bearer_token(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


def key_accepted(keys: Sequence[str], authorization: str | None) -> bool:
    """True when no keys are configured, or the ``Authorization: Bearer`` token is one of them (each
    compared in constant time, so a key cannot be guessed byte by byte from timings)."""
    if not keys:
        return True
    token = bearer_token(authorization)
    if token is None:
        return False
    return any(secrets.compare_digest(token.encode(), key.encode()) for key in keys)


class BearerGuard:
    """ASGI wrapper for a mounted app (the MCP endpoint): 401 JSON unless ``key_accepted``."""

    def __init__(self, app: ASGIApp, keys: Sequence[str]) -> None:
        self.app, self.keys = app, list(keys)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
            if not key_accepted(self.keys, headers.get("authorization")):
                body = b'{"detail": "missing or wrong API key: send Authorization: Bearer <one of STRIDE_API_KEYS>"}'
                await send({"type": "http.response.start", "status": 401,
                            "headers": [(b"content-type", b"application/json"),
                                        (b"content-length", str(len(body)).encode()),
                                        (b"www-authenticate", b"Bearer")]})
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)
