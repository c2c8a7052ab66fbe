"""A real PostgreSQL server for the tests, from Debian's packages (``make db-deps``): a throwaway cluster made
by initdb in a temporary directory, started on a free port and stopped at the end of the session.

PostgreSQL refuses to run as root, and CI runs the tests as root: the server then runs as the ``postgres``
user the Debian package creates (or ``nobody``), in a directory it owns."""

from __future__ import annotations

import itertools
import os
import pwd
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.servers import free_port

USER = "stride"
PASSWORD = "c0rrect-h0rse"  # the throwaway cluster's own; tests check it is never printed
SERVER_OPTIONS = [
    # A cluster that lives for one test session: durability costs time and buys nothing.
    "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
    "-c", "max_connections=200",  # each store pools a few connections, and the replica tests open several
]


def find_bindir() -> Path:
    """Where initdb and postgres are: ``pg_config --bindir``, else the newest /usr/lib/postgresql/*/bin."""
    candidates: list[Path] = []
    pg_config = shutil.which("pg_config")
    if pg_config:
        done = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=False)
        candidates.append(Path(done.stdout.strip()))

    def version(p: Path) -> tuple[int, ...]:
        return tuple(int(n) for n in re.findall(r"\d+", p.parent.name))

    candidates += sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=version, reverse=True)
    for bindir in candidates:
        if (bindir / "postgres").is_file() and (bindir / "initdb").is_file():
            return bindir
    raise RuntimeError("PostgreSQL's server is not installed: run `make db-deps` (Debian's postgresql package)")


def _server_user() -> dict[str, Any]:
    """subprocess arguments that run the server as an unprivileged user when the tests run as root."""
    if os.geteuid() != 0:
        return {}
    for name in ("postgres", "nobody"):
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            continue
        return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}
    raise RuntimeError("running as root, and neither a postgres nor a nobody user exists to run PostgreSQL as")


class PostgresServer:
    def __init__(self, root: Path, bindir: Path) -> None:
        self.root, self.bindir = root, bindir
        self.port = free_port()
        self._names = itertools.count(1)
        self._proc: subprocess.Popen[bytes] | None = None
        self._as = _server_user()

    # --- lifecycle ----------------------------------------------------------------------------------------
    def start(self, timeout: float = 60) -> None:
        (self.root / "pwfile").write_text(PASSWORD + "\n", encoding="utf-8")
        (self.root / "sock").mkdir()
        if self._as:
            for path in (self.root, self.root / "pwfile", self.root / "sock"):
                os.chown(path, self._as["user"], self._as["group"])
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C", "LANG": "C"}
        # Passwords over TCP, so a wrong one is refused as it would be in production.
        self._run([str(self.bindir / "initdb"), "-D", str(self.root / "data"), "-U", USER,
                   f"--pwfile={self.root / 'pwfile'}", "--auth-local=trust", "--auth-host=scram-sha-256",
                   "-E", "UTF8", "--no-locale", "--no-sync"], env)
        log = (self.root / "server.log").open("wb")
        self._proc = subprocess.Popen(
            [str(self.bindir / "postgres"), "-D", str(self.root / "data"), "-p", str(self.port),
             "-c", "listen_addresses=127.0.0.1", "-k", str(self.root / "sock"), *SERVER_OPTIONS],
            stdout=log, stderr=subprocess.STDOUT, cwd=self.root, env=env, start_new_session=True, **self._as,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.admin().close()
                return
            except Exception:  # psycopg.OperationalError until the server accepts connections
                if self._proc.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"PostgreSQL did not start:\n{self.log_tail()}") from None
                time.sleep(0.05)

    def stop(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.send_signal(signal.SIGINT)  # "fast" shutdown: open connections are closed, not waited for
            try:
                self._proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(timeout=10)
        self._proc = None

    def log_tail(self, lines: int = 30) -> str:
        path = self.root / "server.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""

    def _run(self, cmd: list[str], env: dict[str, str]) -> None:
        done = subprocess.run(cmd, capture_output=True, text=True, cwd=self.root, env=env, check=False, **self._as)
        if done.returncode != 0:
            raise RuntimeError(f"{cmd[0]} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")

    # --- databases ----------------------------------------------------------------------------------------
    def url(self, database: str, password: str = PASSWORD, user: str = USER) -> str:
        return f"postgresql+psycopg://{user}:{password}@127.0.0.1:{self.port}/{database}"

    def admin(self, database: str = "postgres") -> Any:
        import psycopg

        return psycopg.connect(host="127.0.0.1", port=self.port, user=USER, password=PASSWORD, dbname=database,
                               autocommit=True, connect_timeout=5)

    def create_database(self) -> str:
        """A new, empty database; its SQLAlchemy URL."""
        name = f"stride_{next(self._names)}"
        with self.admin() as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)


@contextmanager
def running_postgres() -> Iterator[PostgresServer]:
    bindir = find_bindir()
    # Not under pytest's tmp_path: that lies below a directory only root may enter, and the server is not root.
    root = Path(tempfile.mkdtemp(prefix="stride-pg-"))
    server = PostgresServer(root, bindir)
    try:
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


@contextmanager
def write_lock_held(url: str, limit: float = 60) -> Iterator[None]:
    """Another session holds the store's write lock: EXCLUSIVE blocks every insert, update and delete on the
    two tables and lets reads through, as SQLite's write lock does. Held by its own thread, and let go after
    ``limit`` seconds at the latest, so a store that waited for it forever fails a test instead of hanging it."""
    import psycopg
    from sqlalchemy.engine import make_url

    conninfo = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    locked, release = threading.Event(), threading.Event()
    failed: list[BaseException] = []

    def hold() -> None:
        try:
            with psycopg.connect(conninfo) as conn:
                conn.execute("LOCK TABLE queries, feedback IN EXCLUSIVE MODE")
                locked.set()
                release.wait(limit)
                conn.rollback()
        except BaseException as err:
            failed.append(err)
            locked.set()

    holder = threading.Thread(target=hold, name="pg-lock-holder", daemon=True)
    holder.start()
    assert locked.wait(10) and not failed, failed
    try:
        yield
    finally:
        release.set()
        holder.join(timeout=10)
