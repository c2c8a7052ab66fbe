from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from ingest.articles import build_article
from ingest.corpus import read_corpus
from ingest.models import Article
from ingest.settings import Settings

REPO = Path(__file__).resolve().parent.parent
CORPUS = REPO / "corpus"


@pytest.fixture(scope="session")
def real_articles() -> dict[str, Article]:
    """The five shipped articles, cleaned and structured (pure stages only)."""
    return {d.article_id: build_article(d) for d in read_corpus(CORPUS, 2_000_000)}


@pytest.fixture
def corpus_dir(tmp_path: Path) -> Path:
    """A private copy of the shipped corpus that a test may edit."""
    dst = tmp_path / "corpus"
    shutil.copytree(CORPUS, dst)
    return dst


@pytest.fixture
def settings(tmp_path: Path, corpus_dir: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data", corpus_dir=corpus_dir, _env_file=None)  # type: ignore[call-arg]
