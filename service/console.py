"""Terminal output for the CLI: rich progress bars and tables (on stderr, so ``--json`` stdout stays clean)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

if TYPE_CHECKING:
    from service.coverage.gap_report import GapReport

err_console = Console(stderr=True)
log = logging.getLogger("stride.progress")


class RichProgress:
    """Implements ingest.pipeline.Progress with one bar per stage."""

    def __init__(self, console: Console = err_console) -> None:
        self._progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
            transient=False,
            disable=not console.is_terminal,  # CI logs and pipes get the log lines, not redraws
        )
        self._task: Any = None

    def __enter__(self) -> RichProgress:
        self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._task is not None:
            self._progress.update(self._task, completed=self._progress.tasks[self._task].total or 0)
        self._progress.stop()

    def stage(self, name: str, total: int | None) -> None:
        log.info("%s", name)
        if self._task is not None:
            task = self._progress.tasks[self._task]
            self._progress.update(self._task, completed=task.total or 1, total=task.total or 1)
        self._task = self._progress.add_task(name, total=total)

    def advance(self, n: int = 1) -> None:
        if self._task is not None:
            self._progress.advance(self._task, n)


def ingest_table(report: dict[str, Any]) -> Table:
    table = Table(title="stride ingest")
    for col in ("article", "chunks", "added", "skipped", "deleted"):
        table.add_column(col, justify="left" if col == "article" else "right")
    for aid, c in report["articles"].items():
        table.add_row(aid, str(c["chunks"]), str(c["added"]), str(c["skipped"]), str(c["deleted"]))
    table.add_section()
    table.add_row(
        "total",
        str(sum(c["chunks"] for c in report["articles"].values())),
        str(report["num_added"]),
        str(report["num_skipped"]),
        str(report["num_deleted"]),
    )
    return table


def print_answer(result: dict[str, Any]) -> None:
    """An answer and its numbered sources, each with the quote a coach can pass on."""
    from rich.console import Console
    from rich.panel import Panel

    out = Console()
    style = "yellow" if result["abstained"] else "green"
    out.print(Panel(result["answer"], title="Stride", border_style=style))
    for c in result["citations"]:
        where = f"{c['title']}" + (f" › {c['section']}" if c["section"] else "")
        out.print(f"[bold][{c['n']}][/bold] {where}")
        out.print(f"    “{' '.join(c['quote'].split())}”", style="dim")


def gaps_table(report: GapReport) -> Table:
    """The gap clusters to write about, ranked; the off-topic and abuse counts in the caption."""
    from rich.markup import escape

    from service.coverage.gap_export import status_of

    table = Table(title="what to write next", caption=", ".join(
        f"{k.label}: {k.questions} question{'' if k.questions == 1 else 's'}" for k in report.classes
        if k.gap_class in ("off_topic", "abuse")))
    for col in ("#", "cluster", "topic (most typical question)", "asked", "7 d / 30 d", "nearest", "status"):
        table.add_column(col, justify="right" if col in ("#", "asked") else "left")
    for c in report.clusters:
        status, closed = status_of(c)
        if c.closure is not None and c.closure.state == "closed":
            status = f"closed by {c.closure.title}"
        elif closed:
            status = f"{status}, {closed}"
        nearest = f"{c.nearest.section or c.nearest.title} ({c.nearest.similarity:.2f})" if c.nearest else ""
        table.add_row(str(c.rank), c.id, escape(c.label), str(c.asked),
                      f"{c.trend.last_7_days} / {c.trend.last_30_days} {c.trend.direction}", escape(nearest),
                      escape(status + (f" — {c.mark.note}" if c.mark and c.mark.note else "")))
    return table
