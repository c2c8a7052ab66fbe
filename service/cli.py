"""The ``stride`` console script. It is the composition root: it builds Settings and wires the
packages together (the only module that imports ``evals``), lazily, to keep ``stride --help`` fast."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ingest.errors import StrideError
from ingest.settings import Settings

if TYPE_CHECKING:
    from ingest.embedding import SentenceEmbeddings
    from service.answering.engine import Engine
    from service.coverage.build import EvalQuestion

app = typer.Typer(help="Stride: cited answers about running muscles and strength training.", no_args_is_help=True)


@dataclass(frozen=True)
class Wiring:
    """The seams a caller may replace (tests pass a deterministic embedder through ``obj=``)."""

    embeddings_factory: Callable[[str, int], SentenceEmbeddings] | None = None

    def embeddings(self, settings: Settings) -> SentenceEmbeddings:
        from ingest.embedding import embeddings_for

        if self.embeddings_factory is not None:
            return self.embeddings_factory(settings.embedding_model, settings.embed_batch_size)
        return embeddings_for(settings)

    def engine(self, settings: Settings, embeddings: SentenceEmbeddings | None = None) -> Engine:
        from service.answering.engine import Engine

        return Engine.load(settings, embeddings=embeddings or self.embeddings(settings))


def _wiring(ctx: typer.Context) -> Wiring:
    return ctx.obj if isinstance(ctx.obj, Wiring) else Wiring()


def _settings(**overrides: Any) -> Settings:
    from ingest.settings import load_settings

    with domain_errors():
        return load_settings(**overrides)


@contextmanager
def domain_errors() -> Iterator[None]:
    """Every domain failure ends the command with its one-line message and exit code 1."""
    try:
        yield
    except StrideError as err:
        typer.secho(f"error: {err}", fg=typer.colors.RED, err=True)
        raise typer.Exit(1) from err


def _eval_questions() -> list[EvalQuestion]:
    """The eval set, for the coverage report's per-article list; empty when it is not installed."""
    from evals.dataset import QA_FILE, load_items
    from service.coverage.build import EvalQuestion

    if not QA_FILE.is_file():
        return []
    return [EvalQuestion(i.id, i.question, i.split, i.answerable, i.article_ids) for i in load_items("all")]


@app.callback()
def main(
    ctx: typer.Context,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log progress details.")] = False,
) -> None:
    root = logging.getLogger()
    if not root.handlers:  # under a test runner its own handlers stay as they are
        # Quiet unless -v: bm25s sets its own logger to DEBUG when imported (a logger level set here would be
        # undone), so the handler decides; transformers draws a "Loading weights" bar unless told not to.
        logging.basicConfig(
            level=logging.INFO if verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
        )
        root.handlers[0].setLevel(logging.DEBUG if verbose else logging.WARNING)
    if not verbose and "HF_HUB_DISABLE_PROGRESS_BARS" not in os.environ:
        os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"
        # for this command only: a caller running it in-process (a test, a notebook) keeps its environment,
        # and the `stride` processes it starts later draw their bars as asked
        ctx.call_on_close(lambda: os.environ.pop("HF_HUB_DISABLE_PROGRESS_BARS", None))


@app.command()
def ingest(
    ctx: typer.Context,
    corpus: Annotated[
        Path | None, typer.Option(help="Corpus directory (default: STRIDE_CORPUS_DIR or ./corpus).")
    ] = None,
    rebuild: Annotated[
        bool, typer.Option(help="Rebuild the index from scratch (e.g. after changing the model).")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON summary as the last line of stdout.")] = False,
    strict: Annotated[bool, typer.Option(help="Refuse articles with instruction-like text (default: warn).")] = False,
) -> None:
    """Clean, chunk and embed the corpus into the index; re-runs only embed what changed."""
    from ingest.pipeline import run_ingest
    from service.console import RichProgress, ingest_table

    settings = _settings(corpus_dir=corpus)
    wiring = _wiring(ctx)
    try:
        with domain_errors(), RichProgress() as progress:
            report = run_ingest(settings, rebuild=rebuild, progress=progress,
                                embeddings_factory=wiring.embeddings_factory, strict=strict).as_dict()
    except KeyboardInterrupt:
        typer.secho("interrupted — the previous index is intact; run `stride ingest` again to finish", err=True)
        raise typer.Exit(130) from None
    for hit in report["planted"]:
        typer.secho(f"warning: {settings.corpus_dir / hit['file']}:{hit['line']}: instruction-like text "
                    f"({hit['rule']}), never used in answers: “{hit['text'][:120]}”", fg=typer.colors.YELLOW, err=True)
    if as_json:
        typer.echo(json.dumps(report))
    else:
        from rich.console import Console

        Console().print(ingest_table(report))


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Interface to bind (default STRIDE_HOST or 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default STRIDE_PORT or 8000).")] = None,
) -> None:
    """Serve the chat page and the API (POST /chat, /chat/stream, /search; GET /articles, /docs)."""
    import uvicorn

    from ingest.index_source import require_index
    from service.api.app import create_app

    settings = _settings(host=host, port=port)
    with domain_errors():
        require_index(settings)  # refuse to start without an index (or its Chroma server), with one line
        # Opens the feedback store: a wrong STRIDE_DATABASE_URL is one line here, before serving anything.
        server = create_app(settings, eval_questions=_eval_questions())
    uvicorn.run(server, host=settings.host, port=settings.port, log_level="info")


@app.command()
def ask(
    ctx: typer.Context,
    question: Annotated[str, typer.Argument(help="The question, in quotes.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the full response as JSON.")] = False,
) -> None:
    """Answer one question in the terminal, with numbered sources and their quotes."""
    settings = _settings()
    if not question.strip():
        raise typer.BadParameter("the question is empty")
    with domain_errors():
        engine = _wiring(ctx).engine(settings)
    result = engine.chat(question)
    body = {"answer": result.answer, "abstained": result.abstained,
            "citations": [c.model_dump() for c in result.citations], "provenance": result.provenance.model_dump()}
    if as_json:
        typer.echo(json.dumps(body, ensure_ascii=False))
        return
    from service.console import print_answer

    print_answer(body)


@app.command("mcp")
def mcp_stdio(ctx: typer.Context) -> None:
    """Serve Stride to an MCP client (Claude Desktop, an IDE) over stdio: the tools ask_stride,
    search_articles and list_articles, and each article as a resource. stdout carries only the protocol."""
    import contextlib
    import sys

    from service.mcp.server import build_mcp_server

    settings = _settings()
    # Anything a library prints while the model loads goes to stderr; once serving, the SDK diverts fd 1 itself.
    with domain_errors(), contextlib.redirect_stdout(sys.stderr):
        engine = _wiring(ctx).engine(settings)
    try:
        build_mcp_server(lambda: engine).run("stdio")
    except KeyboardInterrupt:
        raise typer.Exit(130) from None


@app.command("eval")
def eval_(
    ctx: typer.Context,
    split: Annotated[str, typer.Option(help="dev (for tuning) or test (for reporting) or all.")] = "test",
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout.")] = False,
    html: Annotated[Path | None, typer.Option(help="Write an HTML report to this path.")] = None,
    compare: Annotated[Path | None, typer.Option(help="A previous --json output to show deltas against.")] = None,
    calibrate: Annotated[bool, typer.Option(help="Fit the abstention threshold on the dev split first.")] = False,
    calibration_out: Annotated[Path, typer.Option(help="Where --calibrate writes the fitted values.")] = Path(
        "artifacts/calibration.json"
    ),
    baseline: Annotated[bool, typer.Option(help="Run the LangChain baseline beside Stride.")] = True,
) -> None:
    """Measure Stride (and the textbook LangChain baseline) on the Q&A set; offline, no LLM."""
    from evals.dataset import SPLITS, load_items
    from evals.harness import evaluate
    from evals.report import load_previous, print_report, write_html
    from ingest.corpus import raw_texts

    if split not in SPLITS:
        raise typer.BadParameter(f"--split must be one of {', '.join(SPLITS)}")
    if calibrate and split != "dev":
        raise typer.BadParameter("calibrate on the dev split only, never on test data (use --split dev --calibrate)")
    settings = _settings()
    try:
        previous = load_previous(compare) if compare else None
    except ValueError as err:
        raise typer.BadParameter(str(err)) from err
    wiring = _wiring(ctx)
    with domain_errors():
        embeddings = wiring.embeddings(settings)
        engine = wiring.engine(settings, embeddings)
        raw = raw_texts(settings.corpus_dir, settings.max_file_bytes)
    items = load_items(split)
    if calibrate:
        from evals.calibrate import fit_calibration

        fitted, summary = fit_calibration(engine, items, raw)
        calibration_out.parent.mkdir(parents=True, exist_ok=True)
        calibration_out.write_text(json.dumps(summary, indent=1) + "\n", encoding="utf-8")
        typer.echo(f"calibrated: {json.dumps(summary)}; wrote {calibration_out} (ship it by copying it to "
                   "service/answering/calibration.json and committing, or point STRIDE_CALIBRATION_FILE at it)",
                   err=True)
        engine = engine.with_parts(calibration=fitted)
    result = {"split": split, **evaluate(engine, items, raw, embeddings if baseline else None)}
    if html:
        write_html(result, html, previous)
        typer.echo(f"wrote {html}", err=True)
    if as_json:
        typer.echo(json.dumps(result, ensure_ascii=False))
    else:
        print_report(result, previous)


coverage_app = typer.Typer(help="The content-coverage report, and the gaps in it to write about.")
app.add_typer(coverage_app, name="coverage")


@coverage_app.callback(invoke_without_command=True)
def coverage(
    ctx: typer.Context,
    out: Annotated[Path, typer.Option(help="Directory for report.html, coverage.json and the CSVs.")] = Path(
        "artifacts/coverage"
    ),
    questions: Annotated[
        Path | None,
        typer.Option(
            help='Also run these questions through Stride: .txt (one per line) or .json/.jsonl with "question".'
        ),
    ] = None,
) -> None:
    """Write the content-coverage report: topic x article heatmap, gaps (declined questions, clustered), overlap."""
    if ctx.invoked_subcommand is not None:
        return
    from service.coverage import read_questions_file, write_coverage

    settings = _settings()
    with domain_errors():
        if questions is not None:
            read_questions_file(questions)  # a bad file fails at once, before the model loads
        engine = _wiring(ctx).engine(settings)
        data = write_coverage(engine, settings, out, questions, _eval_questions())
    gaps, log = data["gaps"], data["gaps"]["log"]
    _say_log(log)
    typer.echo(f"{len(gaps['clusters'])} gap clusters to write about, from {sum(c['asked'] for c in gaps['clusters'])} "
               f"questions; {len(data['overlap']['pairs'])} overlapping statements; "
               f"{len(data['uncovered_topics'])} topics no article covers", err=True)
    typer.echo(f"wrote {out / 'report.html'} (+ {', '.join(f for f in data['files'] if f != 'report.html')})", err=True)


def _say_log(log: dict[str, Any]) -> None:
    if not log["available"]:
        typer.echo("query log: unreadable, so gaps come from --questions only", err=True)
    elif log["empty"]:
        typer.echo("query log: empty, no chat questions logged yet", err=True)
    else:
        typer.echo(f"query log: {log['logged']} questions, {log['declined']} declined, "
                   f"{log['low_confidence']} answered with low confidence", err=True)


@coverage_app.command("gaps")
def coverage_gaps(
    ctx: typer.Context,
    mark: Annotated[str | None, typer.Option("--mark", metavar="CLUSTER",
                                             help="Mark this cluster (an id from the list) with STATUS.")] = None,
    status: Annotated[str | None, typer.Argument(metavar="STATUS",
                                                 help="With --mark: planned, written, or open (removes the mark).")
                      ] = None,
    note: Annotated[str | None, typer.Option(help="With --mark: a note for the team (who, where, when).")] = None,
    fmt: Annotated[str, typer.Option("--format", help="table, csv (one row per question) or json.")] = "table",
    out: Annotated[Path | None, typer.Option(help="Write csv or json here instead of standard output.")] = None,
) -> None:
    """The gap clusters to write about, ranked by recent asks; or mark one planned or written (--mark)."""
    settings = _settings()
    if mark is not None or status is not None or note is not None:
        _mark_cluster(settings, mark, status, note)
        return
    if fmt not in ("table", "csv", "json"):
        raise typer.BadParameter("must be 'table', 'csv' or 'json'", param_hint="--format")
    from service.coverage.build import read_query_log
    from service.coverage.gap_build import build_gaps
    from service.coverage.gap_export import gaps_csv, gaps_json

    with domain_errors():
        engine = _wiring(ctx).engine(settings)
        report = build_gaps(engine, read_query_log(settings), data_dir=settings.data_dir)
    _say_log(report.log.model_dump())
    if fmt == "table":
        from rich.console import Console

        from service.console import gaps_table

        Console().print(gaps_table(report))
        return
    _emit(gaps_csv(report) if fmt == "csv" else gaps_json(report) + "\n", out)
    if out is not None:
        typer.echo(f"{len(report.clusters)} gap clusters written to {out}", err=True)


def _emit(text: str, out: Path | None) -> None:
    """A command's export: to ``out`` (its folder made), or to standard output."""
    if out is None:
        typer.echo(text, nl=False)
        return
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")


def _mark_cluster(settings: Settings, cluster: str | None, status: str | None, note: str | None) -> None:
    from datetime import UTC, datetime

    from ingest.index_source import published_index_version
    from service.coverage.marks import CLEAR, MARK_STATUSES, set_mark

    statuses = (*MARK_STATUSES, CLEAR)
    if cluster is None or status not in statuses:
        raise typer.BadParameter(f"use --mark CLUSTER followed by one of {', '.join(statuses)}", param_hint="--mark")
    with domain_errors():
        version = published_index_version(settings)
        try:
            set_mark(settings.data_dir, cluster, status, note, version, datetime.now(UTC))
        except ValueError as err:
            raise typer.BadParameter(str(err)) from err
    typer.echo(f"{cluster}: {'mark removed' if status == CLEAR else status}", err=True)


@app.command()
def feedback(
    since: Annotated[int | None, typer.Option(min=1, help="Only the last DAYS days.", metavar="DAYS")] = None,
    rating: Annotated[str | None, typer.Option(help="Only 'up' or 'down'.")] = None,
    fmt: Annotated[str, typer.Option("--format", help="csv or json.")] = "csv",
    out: Annotated[Path | None, typer.Option(help="Write here instead of standard output.")] = None,
) -> None:
    """Export feedback with the question, the answer, its sources (exact quotes) and the comment, newest first."""
    from service.feedback.export import read_feedback, to_csv, to_json

    if rating not in (None, "up", "down"):
        raise typer.BadParameter("must be 'up' or 'down'", param_hint="--rating")
    if fmt not in ("csv", "json"):
        raise typer.BadParameter("must be 'csv' or 'json'", param_hint="--format")
    settings = _settings()
    with domain_errors():
        rows = read_feedback(settings, since, rating)  # type: ignore[arg-type]
    _emit(to_csv(rows) if fmt == "csv" else to_json(rows) + "\n", out)
    typer.echo(f"{len(rows)} feedback rows" + (f" written to {out}" if out else ""), err=True)
