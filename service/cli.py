"""The ``stride`` console script. It is the composition root: it builds Settings and wires the
packages together, so it may import any of them (lazily, to keep ``stride --help`` fast)."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Annotated, Optional

import typer

from ingest.errors import StrideError
from ingest.settings import Settings

app = typer.Typer(help="Stride: cited answers about running muscles and strength training.", no_args_is_help=True)


def _settings(**overrides: object) -> Settings:
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


@app.command()
def ingest(
    corpus: Annotated[Optional[Path], typer.Option(help="Corpus directory (default: STRIDE_CORPUS_DIR or ./corpus).")] = None,
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
