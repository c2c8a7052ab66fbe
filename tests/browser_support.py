"""Helpers for the browser tests: Stride served by uvicorn in a background thread, a second tiny origin that
embeds the widget, and Debian's Chromium launched through Playwright (which cannot download its own here)."""

from __future__ import annotations

import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import uvicorn
from fastapi import FastAPI

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--no-first-run", "--disable-sync",
]
SCREENSHOTS = Path(__file__).resolve().parent.parent / "artifacts" / "screenshots"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def serve_app(app: FastAPI, ready_timeout: float = 120.0) -> Iterator[str]:
    """Serve ``app`` on a free 127.0.0.1 port; yields its base URL once /readyz says ready."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, name=f"stride-uvicorn-{port}", daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(url, server, thread, ready_timeout)
        yield url
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def _wait_ready(url: str, server: uvicorn.Server, thread: threading.Thread, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        if not thread.is_alive():
            raise RuntimeError(f"uvicorn exited before {url} was ready")
        if server.started:
            try:
                with urllib.request.urlopen(url + "/readyz", timeout=2) as r:
                    if r.status == 200:
                        return
            except urllib.error.HTTPError as err:
                last = err.read().decode(errors="replace")
            except OSError as err:
                last = err
        time.sleep(0.1)
    raise TimeoutError(f"{url} not ready after {timeout}s: {last}")


class _PagesHandler(BaseHTTPRequestHandler):
    def __init__(self, pages: dict[str, str], *args: Any, **kwargs: Any) -> None:
        self.pages = pages
        super().__init__(*args, **kwargs)

    def do_GET(self) -> None:
        body = self.pages.get(self.path.split("?", 1)[0])
        if body is None:
            self.send_error(404)
            return
        data = body.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: Any) -> None:  # keep test output quiet
        pass


@contextmanager
def serve_pages(pages: dict[str, str]) -> Iterator[str]:
    """Serve fixed HTML ``pages`` ({path: html}) on another free 127.0.0.1 port (another origin)."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), partial(_PagesHandler, pages))
    thread = threading.Thread(target=httpd.serve_forever, name="stride-host-pages", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=10)


# A host page written to provoke leaks both ways: aggressive global rules that must not restyle the widget,
# and elements of its own that the widget must not restyle.
HOST_CSS = """
html { font-size: 10px; }
* { box-sizing: content-box; font-family: Georgia, serif; color: #5a2d0c; letter-spacing: 0.08em; }
body { margin: 0; background: #fdf6ec; line-height: 2.4; }
div, section, p, ol, li { border: 0 solid lime; margin: 0.5em; }
button { background: hotpink; padding: 30px; border-radius: 0; font-size: 22px; text-transform: uppercase; }
textarea { background: yellow; }
"""


def host_page(stride_url: str, title: str = "Riverside Running Club") -> str:
    """A club's page on another origin that embeds the widget with the one documented line."""
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title><style>{HOST_CSS}</style></head>
<body>
<h1>{title}</h1>
<p>Tuesday intervals at 6 pm, long run on Sunday. Ask our coach bot about strength work below.</p>
<button id="host-button" type="button">Join the club</button>
<script src="{stride_url}/widget.js" data-stride-url="{stride_url}" defer></script>
</body></html>"""


def launch_chromium(playwright: Any) -> Any:
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
