"""Chunks of the real articles: verbatim, within one section, sentence offsets exact."""

from __future__ import annotations

import itertools
import re

import pytest

from ingest.chunking import chunk_article
from ingest.models import Article
from ingest.settings import Settings

SHIPPED = Settings(_env_file=None)  # type: ignore[call-arg]  # the sizes the product ships with


@pytest.fixture(scope="module")
def chunks_by_article(real_articles: dict[str, Article]):
    return {
        aid: chunk_article(a, SHIPPED.chunk_target_chars, SHIPPED.chunk_max_chars) for aid, a in real_articles.items()
    }


def test_chunk_text_is_verbatim_article_text(real_articles, chunks_by_article) -> None:
    for aid, chunks in chunks_by_article.items():
        text = real_articles[aid].text
        for c in chunks:
            assert text[c.start : c.end] == c.text
            assert c.text.strip() == c.text or c.text.startswith("  ")  # list items may be indented


def test_every_chunk_is_verbatim_in_the_source_file(real_articles, chunks_by_article) -> None:
    from tests.conftest import CORPUS

    for aid, chunks in chunks_by_article.items():
        raw = (CORPUS / real_articles[aid].file).read_text(encoding="utf-8")
        for c in chunks:
            assert c.text in raw, (aid, c.text[:60])


def test_every_body_block_is_in_exactly_one_chunk(real_articles, chunks_by_article) -> None:
    for aid, chunks in chunks_by_article.items():
        for block in real_articles[aid].blocks:
            owners = [c for c in chunks if c.start <= block.start and block.end <= c.end]
            split = [c for c in chunks if block.start <= c.start < block.end]
            assert len(owners) == 1 or len(split) >= 2, (aid, block)


def test_sentence_offsets_cover_whole_sentences(chunks_by_article) -> None:
    c = next(c for c in chunks_by_article["can-runners-build-muscle"] if "A 70kg runner should target" in c.text)
    sentences = [c.text[s:e] for s, e in c.sentences]
    expected = (
        "A 70kg runner should target 112–154 grams of protein daily — "
        "considerably more than most runners eat by default."
    )
    assert expected in sentences


def test_a_sentence_glued_to_the_one_before_is_a_sentence_of_its_own(chunks_by_article) -> None:
    # the scraper lost the space after "region.": each sentence is still cited alone
    hips = chunks_by_article["hip-strengthening-exercises-for-runners"]
    c = next(c for c in hips if "in the region.Another" in c.text)
    sentences = [c.text[s:e] for s, e in c.sentences]
    assert "The hip bridge test is a good way to measure endurance in the region." in sentences
    assert any(s.startswith("Another technique is to lay on the floor") for s in sentences)


@pytest.mark.parametrize(("text", "expected"), [
    ("endurance in the region.Another technique is to lay down.",
     ["endurance in the region.", "Another technique is to lay down."]),
    ("The U.S.Army trains runners.", ["The U.S.Army trains runners."]),  # capitals before it: an abbreviation
    ("Dr. Smith said so. It works.", ["Dr. Smith said so.", "It works."]),
    ("Visit runnersworld.com for more.", ["Visit runnersworld.com for more."]),
])
def test_only_a_lost_space_after_a_sentence_splits_a_glued_word(text: str, expected: list[str]) -> None:
    from ingest.sentences import sentence_spans

    assert [text[s:e] for s, e in sentence_spans(text)] == expected


def test_positions_are_in_reading_order(chunks_by_article) -> None:
    for chunks in chunks_by_article.values():
        assert [c.position for c in chunks] == list(range(len(chunks)))
        assert all(a.end <= b.start for a, b in itertools.pairwise(chunks))


def test_table_row_chunk_embeds_the_header(chunks_by_article) -> None:
    row = next(c for c in chunks_by_article["can-runners-build-muscle"] if c.text.startswith("| Hamstrings |"))
    assert row.kind == "table"
    assert "| Muscle group | Running stimulus |" in row.embedding_text()
    assert row.embedding_text().startswith("Which Muscles Does Running Build?\n| Muscle group")


def test_no_chunk_mixes_references_with_advice(chunks_by_article) -> None:
    for c in chunks_by_article["hip-strengthening-exercises-for-runners"]:
        has_ref = bool(re.search(r"\bdoi\b|\bPMID\b|\b10\.\d{4,}/", c.text))
        assert has_ref == c.is_reference, c.text[:80]


def test_chunks_stay_within_the_size_limit(chunks_by_article) -> None:
    for chunks in chunks_by_article.values():
        for c in chunks:
            assert len(c.text) <= SHIPPED.chunk_max_chars


def test_long_list_is_split_with_its_lead_in_as_prefix() -> None:
    from ingest.articles import build_article
    from ingest.models import SourceDoc

    items = "\n".join(f"- Exercise number {i} works the glutes and the hamstrings hard." for i in range(40))
    doc = SourceDoc("x", "x.txt", f"Glute Guide\n\nGlute exercises include:\n{items}\n", "Glute Guide")
    chunks = chunk_article(build_article(doc), 300, 500)
    assert len(chunks) > 3
    assert chunks[0].text.startswith("Glute exercises include:")
    assert all(c.prefix == "Glute exercises include:" for c in chunks[1:])
