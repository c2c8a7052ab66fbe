"""The static UI: the chat page ``GET /``, the embeddable ``/widget.js`` and its ``/widget.css``."""

from __future__ import annotations

import hashlib
from functools import cache
from importlib import resources

from fastapi import APIRouter, Request, Response
from fastapi.openapi.docs import get_redoc_html
from fastapi.responses import HTMLResponse

router = APIRouter(tags=["ui"])

_TYPES = {
    "index.html": "text/html; charset=utf-8",
    "widget.js": "text/javascript; charset=utf-8",
    "widget.css": "text/css; charset=utf-8",
}
# widget.js is fetched by every page that embeds it: cache a little, then revalidate cheaply by ETag.
# The page always revalidates so a deploy shows up at once.
_CACHE = {"index.html": "no-cache", "widget.js": "public, max-age=300", "widget.css": "public, max-age=300"}
# The chat page loads only its own script and style and talks only to this origin.
_PAGE_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'self'"
)


@cache
def _asset(name: str) -> tuple[bytes, str]:
    data = resources.files("service.api").joinpath("static", name).read_bytes()
    return data, '"' + hashlib.sha256(data).hexdigest()[:16] + '"'


def _serve(name: str, request: Request) -> Response:
    data, etag = _asset(name)
    headers = {"ETag": etag, "Cache-Control": _CACHE[name], "X-Content-Type-Options": "nosniff"}
    if name == "index.html":
        headers["Content-Security-Policy"] = _PAGE_CSP
    if etag in request.headers.get("if-none-match", ""):
        return Response(status_code=304, headers=headers)
    return Response(content=data, media_type=_TYPES[name], headers=headers)


@router.get("/", include_in_schema=False)
def index(request: Request) -> Response:
    """The full chat page (the widget in full-page mode)."""
    return _serve("index.html", request)


@router.get("/widget.js", include_in_schema=False)
def widget_js(request: Request) -> Response:
    """The embeddable widget: ``<script src="https://HOST/widget.js" data-stride-url="https://HOST" defer>``."""
    return _serve("widget.js", request)


@router.get("/widget.css", include_in_schema=False)
def widget_css(request: Request) -> Response:
    return _serve("widget.css", request)


# ReDoc's own script asks a CDN for its logo: the policy keeps the page to Stride's own assets, offline too.
_REDOC_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "font-src 'self' data:; worker-src 'self' blob:; connect-src 'self'; object-src 'none'; base-uri 'none'"
)
DOCS_ASSETS = "/static-offline-docs"  # where fastapi-offline mounts Swagger UI and ReDoc


@router.get("/redoc", include_in_schema=False)
def redoc(request: Request) -> HTMLResponse:
    """The API reference in ReDoc, from the bundled script (Swagger UI is at /docs)."""
    root = request.scope.get("root_path", "")
    page = get_redoc_html(openapi_url=f"{root}/openapi.json", title="Stride - ReDoc",
                          redoc_js_url=f"{root}{DOCS_ASSETS}/redoc.standalone.js",
                          redoc_favicon_url=f"{root}{DOCS_ASSETS}/favicon.png", with_google_fonts=False)
    page.headers["Content-Security-Policy"] = _REDOC_CSP
    return page
