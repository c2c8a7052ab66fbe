"""A real ``stride serve`` process on a free port, as a user starts it: for the bench and the tests."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

STRIDE = [sys.executable, "-c", "from service.cli import app; app()"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class Served:
    base: str
    pid: int


@contextmanager
def stride_serve(env: dict[str, str], *, cwd: Path | None = None, timeout: float = 120.0) -> Iterator[Served]:
    """Starts ``stride serve`` with ``env`` over the current environment, waits until /readyz says ready,
    and stops it on the way out. A server that exits first is an error quoting the end of its log."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    # stderr to a file, not a pipe: a chatty server must never block on a full one.
    with tempfile.TemporaryFile(mode="w+") as log:
        proc = subprocess.Popen([*STRIDE, "serve", "--port", str(port)], env={**os.environ, **env}, cwd=cwd,
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
                time.sleep(0.02)
            yield Served(base, proc.pid)
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
