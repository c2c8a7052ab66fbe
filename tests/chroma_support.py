"""A real Chroma server (`chroma run`, shipped with the chromadb package) on a free port, for tests."""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

import httpx

from evals.serving import free_port

CHROMA = Path(sys.executable).parent / "chroma"


class ChromaProcess:
    """``chroma run --path PATH`` on ``port``; can be stopped and started again on the same port and data."""

    def __init__(self, path: Path, port: int | None = None) -> None:
        self.path = path
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._proc: subprocess.Popen[str] | None = None
        self._log: IO[str] | None = None

    def start(self, timeout: float = 30.0) -> str:
        self._log = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115 -- lives until stop(), across calls
        self._proc = subprocess.Popen(
            [str(CHROMA), "run", "--path", str(self.path), "--host", "127.0.0.1", "--port", str(self.port)],
            stdout=self._log, stderr=subprocess.STDOUT, text=True)
        deadline = time.monotonic() + timeout
        while True:
            try:
                if httpx.get(f"{self.url}/api/v2/heartbeat", timeout=1).status_code == 200:
                    return self.url
            except httpx.HTTPError:
                pass
            if self._proc.poll() is not None or time.monotonic() > deadline:
                self._log.seek(0)
                raise RuntimeError(f"chroma run did not start: {self._log.read()[-2000:]}")
            time.sleep(0.05)

    def stop(self) -> None:
        if self._proc is not None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
            self._proc = None
        if self._log is not None:
            self._log.close()
            self._log = None


@contextmanager
def chroma_run(path: Path, port: int | None = None) -> Iterator[str]:
    """A Chroma server for the block; yields its URL."""
    server = ChromaProcess(path, port)
    server.start()
    try:
        yield server.url
    finally:
        server.stop()
