"""The ``stride`` console script. It is the composition root: it builds Settings and wires the
packages together, so it may import any of them (lazily, to keep ``stride --help`` fast)."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Annotated, Any

import typer

from ingest.errors import StrideError
from ingest.settings import Settings

app = typer.Typer(help="Stride: cited answers about running muscles and strength training.", no_args_is_help=True)


def _settings(**overrides: Any) -> Settings:
    try:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})
    except ValueError as err:  # pydantic's ValidationError is a ValueError
        raise typer.BadParameter(str(err)) from err


def _fail(err: StrideError) -> typer.Exit:
    typer.secho(f"error: {err}", fg=typer.colors.RED, err=True)
    return typer.Exit(1)


@app.callback()
def main(verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log progress details.")] = False) -> None:
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("bm25s").setLevel(logging.WARNING)  # it logs every index build at DEBUG


@app.command()
def ingest(
    corpus: Annotated[Path | None, typer.Option(help="Corpus directory (default: STRIDE_CORPUS_DIR or ./corpus).")] = None,
    rebuild: Annotated[bool, typer.Option(help="Rebuild the index from scratch (e.g. after changing the model).")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON summary as the last line of stdout.")] = False,
) -> None:
    """Clean, chunk and embed the corpus into the index; re-runs only embed what changed."""
    from ingest.pipeline import run_ingest
    from service.console import RichProgress, ingest_table

    settings = _settings(corpus_dir=corpus)
    try:
        with RichProgress() as progress:
            report = run_ingest(settings, rebuild=rebuild, progress=progress).as_dict()
    except StrideError as err:
        raise _fail(err) from err
    except KeyboardInterrupt:
        typer.secho("interrupted — the previous index is intact; run `stride ingest` again to finish", err=True)
        raise typer.Exit(130) from None
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

    from ingest.store import read_manifest
    from service.app import create_app

    settings = _settings(host=host, port=port)
    try:
        read_manifest(settings.data_dir)  # refuse to start without an index, with one line
    except StrideError as err:
        raise _fail(err) from err
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_level="info")


@app.command()
def ask(
    question: Annotated[str, typer.Argument(help="The question, in quotes.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the full response as JSON.")] = False,
) -> None:
    """Answer one question in the terminal, with numbered sources and their quotes."""
    from service.engine import Engine

    settings = _settings()
    if not question.strip():
        raise typer.BadParameter("the question is empty")
    try:
        engine = Engine.load(settings)
    except StrideError as err:
        raise _fail(err) from err
    result = engine.chat(question)
    if as_json:
        typer.echo(json.dumps(result.as_dict(), ensure_ascii=False))
        return
    from service.console import print_answer

    print_answer(result.as_dict())


@app.command("eval")
def eval_(
    split: Annotated[str, typer.Option(help="dev (for tuning) or test (for reporting) or all.")] = "test",
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout.")] = False,
    html: Annotated[Path | None, typer.Option(help="Write an HTML report to this path.")] = None,
    compare: Annotated[Path | None, typer.Option(help="A previous --json output to show deltas against.")] = None,
    calibrate: Annotated[bool, typer.Option(help="Fit the abstention threshold on this split (dev) first.")] = False,
    baseline: Annotated[bool, typer.Option(help="Run the LangChain baseline beside Stride.")] = True,
) -> None:
    """Measure Stride (and the textbook LangChain baseline) on the Q&A set; offline, no LLM."""
    from evals.dataset import SPLITS, load_items
    from evals.harness import evaluate
    from evals.report import load_previous, print_report, write_html
    from service.engine import Engine

    if split not in SPLITS:
        raise typer.BadParameter(f"--split must be one of {', '.join(SPLITS)}")
    if calibrate and split == "test":
        raise typer.BadParameter("calibrate on the dev split, never on test (use --split dev --calibrate)")
    settings = _settings()
    try:
        previous = load_previous(compare) if compare else None
    except ValueError as err:
        raise typer.BadParameter(str(err)) from err
    try:
        engine = Engine.load(settings)
    except StrideError as err:
        raise _fail(err) from err
    items = load_items(split)
    if calibrate:
        from evals.calibrate import calibrate as fit
        from ingest.corpus import read_corpus

        raw = {d.article_id: d.text for d in read_corpus(settings.corpus_dir, settings.max_file_bytes)}
        fitted = fit(engine, items, raw)
        typer.echo(f"calibrated: {json.dumps(fitted)}", err=True)
    result = {"split": split, **evaluate(engine, items, settings.corpus_dir, with_baseline=baseline)}
    if html:
        write_html(result, html, previous)
        typer.echo(f"wrote {html}", err=True)
    if as_json:
        typer.echo(json.dumps(result, ensure_ascii=False))
    else:
        print_report(result, previous)


@app.command()
def coverage(
    out: Annotated[Path, typer.Option(help="Directory for report.html, coverage.json and the CSVs.")] = Path(
        "artifacts/coverage"
    ),
    questions: Annotated[
        Path | None,
        typer.Option(help='Also run these questions through Stride: .txt (one per line) or .json/.jsonl with "question".'),
    ] = None,
) -> None:
    """Write the content-coverage report: topic x article heatmap, gaps (declined questions, clustered), overlap."""
    from service.coverage import read_questions_file, write_coverage
    from service.engine import Engine

    settings = _settings()
    try:
        if questions is not None:
            read_questions_file(questions)  # a bad file fails at once, before the model loads
        engine = Engine.load(settings)
        data = write_coverage(engine, settings, out, questions)
    except StrideError as err:
        raise _fail(err) from err
    gaps, log = data["gaps"], data["gaps"]["log"]
    if not log["available"]:
        typer.echo("query log: unreadable, so gaps come from --questions only", err=True)
    elif log["empty"]:
        typer.echo("query log: empty, no chat questions logged yet", err=True)
    else:
        typer.echo(f"query log: {log['logged']} questions, {log['declined']} declined, "
                   f"{log['low_confidence']} answered with low confidence", err=True)
    typer.echo(f"{len(gaps['clusters'])} gap clusters from {gaps['asked']} questions; "
               f"{len(data['overlap']['pairs'])} overlapping statements; "
               f"{len(data['uncovered_topics'])} topics no article covers", err=True)
    typer.echo(f"wrote {out / 'report.html'} (+ {', '.join(f for f in data['files'] if f != 'report.html')})", err=True)
