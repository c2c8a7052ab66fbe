"""What the content team has done about each gap cluster ("planned", "written"), and the cluster ids of the
last report, kept as two small JSON files under ``<data_dir>/coverage/``: files rather than the database,
so marking works from the CLI with the server running, and a copy of the data dir carries them along.
Each write replaces its file atomically; a read-modify-write of the marks holds a lock file."""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Literal

from ingest.errors import StrideError
from ingest.store import write_json_atomic

log = logging.getLogger(__name__)

MarkStatus = Literal["planned", "written"]
MARK_STATUSES: tuple[MarkStatus, ...] = ("planned", "written")
CLEAR = "open"  # marking a cluster "open" removes its mark
MAX_NOTE_CHARS = 500


class UnknownCluster(StrideError):
    pass


class MarksInvalid(StrideError):
    pass


@dataclass(frozen=True)
class Mark:
    status: MarkStatus
    note: str | None
    marked_at: str  # UTC, ISO 8601
    index_version: str  # the index when marked: "after the next ingest" means any other version


def coverage_dir(data_dir: Path) -> Path:
    return Path(data_dir) / "coverage"


def marks_path(data_dir: Path) -> Path:
    return coverage_dir(data_dir) / "marks.json"


def registry_path(data_dir: Path) -> Path:
    return coverage_dir(data_dir) / "clusters.json"


def marks_revision(data_dir: Path) -> tuple[int, int] | None:
    """Changes whenever the marks do (for caches of a page that shows them)."""
    try:
        st = marks_path(data_dir).stat()
    except FileNotFoundError:
        return None
    return st.st_mtime_ns, st.st_size


def read_marks(data_dir: Path) -> dict[str, Mark]:
    path = marks_path(data_dir)
    if not path.exists():
        return {}
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        return {cid: Mark(m["status"], m.get("note"), m["marked_at"], m["index_version"])
                for cid, m in raw["marks"].items() if m["status"] in MARK_STATUSES}
    except (ValueError, KeyError, TypeError, AttributeError) as err:
        raise MarksInvalid(f"gap marks file {path} is not valid ({err}) — fix it or delete it to clear all marks"
                           ) from err


def read_registry(data_dir: Path) -> dict[str, frozenset[str]]:
    """The last report's cluster ids and their question keys; {} before the first report. A damaged file is
    only logged: ids derive from each cluster's earliest question, so most come back the same anyway."""
    path = registry_path(data_dir)
    if not path.exists():
        return {}
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        return {cid: frozenset(keys) for cid, keys in raw["clusters"].items()}
    except (ValueError, KeyError, TypeError, AttributeError) as err:
        log.warning("ignoring damaged cluster registry %s: %s", path, err)
        return {}


def write_registry(data_dir: Path, clusters: Mapping[str, frozenset[str]]) -> None:
    write_json_atomic(registry_path(data_dir), {"clusters": {cid: sorted(keys) for cid, keys in clusters.items()}})


@contextlib.contextmanager
def _locked(data_dir: Path) -> Iterator[None]:
    lock = coverage_dir(data_dir) / ".marks.lock"
    lock.parent.mkdir(parents=True, exist_ok=True)
    with lock.open("w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def set_mark(data_dir: Path, cluster_id: str, status: str, note: str | None, index_version: str,
             now: datetime) -> Mark | None:
    """Mark ``cluster_id`` (an id of the last report) "planned" or "written", or clear it with "open";
    returns the new mark (None when cleared). Raises UnknownCluster, ValueError on a bad status or note."""
    if status not in (*MARK_STATUSES, CLEAR):
        raise ValueError(f"status must be one of {', '.join((*MARK_STATUSES, CLEAR))}, not {status!r}")
    note = (note or "").strip() or None
    if note is not None and (len(note) > MAX_NOTE_CHARS or "\x00" in note):
        raise ValueError(f"the note must be at most {MAX_NOTE_CHARS} characters of text")
    with _locked(data_dir):
        known = read_registry(data_dir)
        if cluster_id not in known:
            hint = ("no gap report has been made yet: run `stride coverage gaps` first" if not known
                    else "`stride coverage gaps` lists the current cluster ids")
            raise UnknownCluster(f"unknown gap cluster {cluster_id!r} — {hint}")
        marks = read_marks(data_dir)
        mark = None
        if status == CLEAR:
            marks.pop(cluster_id, None)
        else:
            mark = Mark(status, note, now.strftime("%Y-%m-%dT%H:%M:%SZ"), index_version)  # type: ignore[arg-type]
            marks[cluster_id] = mark
        write_json_atomic(marks_path(data_dir), {"marks": {cid: asdict(m) for cid, m in sorted(marks.items())}})
    return mark
