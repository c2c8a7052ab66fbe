"""Every failure becomes a JSON response, mapped here and nowhere else: ``{"detail": "..."}``, or under
``/v1`` (the OpenAI-compatible API) OpenAI's ``{"error": {"message", "type", "param", "code"}}``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from ingest.errors import StrideError
from service.api.openai_wire import error_body

OPENAI_PREFIX = "/v1/"


class OpenAIError(Exception):
    """A /v1 failure with OpenAI's ``code`` (e.g. ``model_not_found``)."""

    def __init__(self, status: int, message: str, code: str | None = None, param: str | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.code, self.param = status, message, code, param


def error_content(path: str, status: int, message: str, code: str | None = None,
                  param: str | None = None) -> dict[str, Any]:
    """The error body a caller of ``path`` expects."""
    if path.startswith(OPENAI_PREFIX):
        return error_body(message, status, code, param)
    return {"detail": message}


def validation_message(err: RequestValidationError | ValidationError) -> str:
    """One readable line from pydantic's error list ("message: must not be empty")."""
    parts = []
    for e in err.errors():
        if e.get("type") == "json_invalid":
            return "request body is not valid JSON"
        loc = ".".join(str(x) for x in e.get("loc", ()) if x != "body")
        msg = str(e.get("msg")).removeprefix("Value error, ")
        parts.append(f"{loc}: {msg}" if loc else msg)
    return "; ".join(parts) or "invalid request"


def public_message(message: str, data_dir: Path) -> str:
    """A domain error as callers may see it: the server's own paths become the logical STRIDE_DATA_DIR."""
    for path in sorted({str(data_dir.resolve()), str(data_dir)}, key=len, reverse=True):
        if path not in (".", ""):
            message = message.replace(path, "STRIDE_DATA_DIR")
    return message


def install(app: FastAPI, data_dir: Path) -> None:
    @app.exception_handler(RequestValidationError)
    async def on_validation(request: Request, err: RequestValidationError) -> JSONResponse:
        # OpenAI answers a malformed request with 400; the rest of the API has always said 422.
        status = 400 if request.url.path.startswith(OPENAI_PREFIX) else 422
        return JSONResponse(status_code=status,
                            content=error_content(request.url.path, status, validation_message(err)))

    @app.exception_handler(StarletteHTTPException)
    async def on_http(request: Request, err: StarletteHTTPException) -> JSONResponse:
        return JSONResponse(status_code=err.status_code, headers=err.headers,
                            content=error_content(request.url.path, err.status_code, str(err.detail)))

    @app.exception_handler(OpenAIError)
    async def on_openai(request: Request, err: OpenAIError) -> JSONResponse:
        return JSONResponse(status_code=err.status,
                            content=error_content(request.url.path, err.status, err.message, err.code, err.param))

    @app.exception_handler(StrideError)
    async def on_stride(request: Request, err: StrideError) -> JSONResponse:
        # A domain failure while serving means the index or model went away: not the caller's fault.
        return JSONResponse(status_code=503, headers={"Retry-After": "2"},
                            content=error_content(request.url.path, 503, public_message(str(err), data_dir)))


def true_openapi(app: FastAPI) -> dict[str, Any]:
    """The app's OpenAPI schema without FastAPI's stock 422 (a list of pydantic errors): request bodies
    declare their own 422 (``{"detail": str}``, as ``on_validation`` sends), and a route whose only
    parameter is a path string never answers 422 at all."""
    if app.openapi_schema is None:
        schema = FastAPI.openapi(app)  # FastAPI's own, cached on the app: edited in place once
        for operations in schema.get("paths", {}).values():
            for op in operations.values():
                stock = op.get("responses", {}).get("422", {})
                if "HTTPValidationError" in str(stock):
                    del op["responses"]["422"]
        for name in ("HTTPValidationError", "ValidationError"):
            schema.get("components", {}).get("schemas", {}).pop(name, None)
        app.openapi_schema = schema
    return app.openapi_schema
