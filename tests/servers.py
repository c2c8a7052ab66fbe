"""Real local HTTP servers for tests: run an ASGI app with uvicorn in a thread on a free port."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import uvicorn


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def serve(app, ready_path: str = "/", timeout: float = 60.0) -> Iterator[str]:  # type: ignore[no-untyped-def]
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(base + ready_path, timeout=1).status_code < 500:
                break
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            server.should_exit = True
            raise TimeoutError(f"server on {base} not ready")
        time.sleep(0.05)
    try:
        yield base
    finally:
        server.should_exit = True
        thread.join(timeout=10)


STRIDE = [sys.executable, "-c", "from service.cli import app; app()"]


@contextmanager
def stride_serve(env: dict[str, str], timeout: float = 120.0) -> Iterator[str]:
    """A real ``stride serve`` process on a free port, as a user starts it; yields its base URL."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    # stderr to a file, not a pipe: a chatty server must never block on a full one.
    with tempfile.TemporaryFile(mode="w+") as log:
        proc = subprocess.Popen([*STRIDE, "serve", "--port", str(port)], env={**os.environ, **env},
                                stdout=subprocess.DEVNULL, stderr=log, text=True)
        deadline = time.monotonic() + timeout
        try:
            while True:
                try:
                    if httpx.get(base + "/readyz", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if proc.poll() is not None:
                    log.seek(0)
                    raise RuntimeError(f"stride serve exited: {log.read()[-2000:]}")
                if time.monotonic() > deadline:
                    raise TimeoutError(f"stride serve on {base} not ready")
                time.sleep(0.1)
            yield base
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
