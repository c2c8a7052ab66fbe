"""The Q&A set itself: well-formed, verbatim evidence, balanced splits."""

from __future__ import annotations

from collections import Counter

from evals.dataset import load_items
from tests.conftest import CORPUS

ARTICLE_FILES = {
    "what-muscles-does-running-work": "000_cc84e308996c28ef.txt",
    "can-runners-build-muscle": "001_b8f55c02e301bfb2.txt",
    "strength-exercises-for-runners": "002_32a1229ae178e6c8.txt",
    "does-running-help-hamstrings": "003_c92f3383a1a91ea7.txt",
    "hip-strengthening-exercises-for-runners": "004_5b03b4e403c33239.txt",
}


def test_ids_are_unique_and_there_are_enough_questions() -> None:
    items = load_items("all")
    assert len(items) >= 170
    assert len({i.id for i in items}) == len(items)


def test_every_gold_span_is_verbatim_in_its_article_and_survives_cleaning(real_articles) -> None:
    for item in load_items("all"):
        for ev in item.evidence:
            raw = (CORPUS / ARTICLE_FILES[ev.article_id]).read_text(encoding="utf-8")
            assert ev.text in raw, (item.id, ev.text[:60])
            assert ev.text in real_articles[ev.article_id].text, (item.id, "removed by cleaning")


def test_answerable_items_have_facts_and_evidence_and_unanswerable_have_none() -> None:
    for item in load_items("all"):
        if item.answerable:
            assert item.key_facts and item.evidence and item.article_ids, item.id
            assert {e.article_id for e in item.evidence} <= set(item.article_ids)
        else:
            assert not item.key_facts and not item.evidence, item.id


def test_mix_of_kinds_and_splits() -> None:
    items = load_items("all")
    kinds = Counter(i.kind for i in items)
    assert kinds["follow_up"] >= 20 and kinds["chat"] >= 30 and kinds["set"] >= 20
    assert kinds["procedure"] >= 15 and kinds["definition"] >= 10
    assert sum(1 for i in items if i.kind == "follow_up" and sum(r == "user" for r, _ in i.history) >= 2) >= 3
    assert sum(not i.answerable for i in items) >= 35 and kinds["adjacent"] >= 20
    assert all(not i.answerable for i in items if i.kind == "adjacent")
    assert all(i.history for i in items if i.kind == "follow_up")
    splits = Counter(i.split for i in items)
    assert abs(splits["dev"] - splits["test"]) <= 0.1 * len(items)
    for article in ARTICLE_FILES:
        per = Counter(i.split for i in items if i.article_ids[:1] == (article,))
        assert per["dev"] and per["test"], article
