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


# --- engines ------------------------------------------------------------------------------

def build_fake_engine(settings: Settings):
    """An Engine over ``settings``' index with the deterministic hashing model (no torch)."""
    from ingest.embedding import SentenceEmbeddings
    from ingest.lexicon import Lexicon
    from ingest.store import open_index
    from service.engine import Engine
    from tests.fakes import HashingModel

    snapshot = open_index(settings.data_dir, settings.embedding_model)
    embeddings = SentenceEmbeddings(settings.embedding_model, model=HashingModel())
    return Engine(settings, snapshot, embeddings, Lexicon.load(snapshot.root))


@pytest.fixture
def fake_index(settings: Settings) -> Settings:
    from ingest.pipeline import run_ingest
    from tests.fakes import fake_embeddings_factory

    run_ingest(settings, embeddings_factory=fake_embeddings_factory())
    return settings


@pytest.fixture
def client(fake_index: Settings):
    """A TestClient over a fake-model engine, waited on until ready."""
    import time

    from fastapi.testclient import TestClient

    from service.app import create_app

    # Hashed bag-of-words cosines run lower than the real model's: use the threshold override.
    settings = fake_index.model_copy(update={"abstain_threshold": 0.05})
    app = create_app(settings, engine_factory=build_fake_engine)
    with TestClient(app) as c:
        deadline = time.monotonic() + 30
        while c.get("/readyz").status_code != 200:
            assert time.monotonic() < deadline, c.get("/readyz").json()
            time.sleep(0.05)
        yield c


@pytest.fixture(scope="session")
def real_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """The shipped corpus ingested once per session with the real model."""
    from ingest.pipeline import run_ingest

    data = tmp_path_factory.mktemp("real") / "data"
    s = Settings(data_dir=data, corpus_dir=CORPUS, _env_file=None)  # type: ignore[call-arg]
    run_ingest(s)
    return s


@pytest.fixture(scope="session")
def real_engine(real_settings: Settings):
    from service.engine import Engine

    return Engine.load(real_settings)
