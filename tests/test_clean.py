"""Golden tests: every boilerplate removal and every keep, on the real articles."""

from __future__ import annotations

import pytest

from ingest.clean import clean
from ingest.models import Article
from tests.conftest import CORPUS

REMOVED = [
    ("strength-exercises-for-runners", "newsletter", "Sign Up for My Newsletter for More Running Tips"),
    ("strength-exercises-for-runners", "newsletter", "* indicates required"),
    ("strength-exercises-for-runners", "newsletter", "Want more help? Sign up for my weekly email newsletter"),
    ("strength-exercises-for-runners", "share_and_reply", "Share this post"),
    ("strength-exercises-for-runners", "share_and_reply", "Leave a Reply"),
    ("strength-exercises-for-runners", "share_and_reply", "Required fields are marked *"),
    ("strength-exercises-for-runners", "read_more_link", "Read the full article for the best strength exercises"),
    ("strength-exercises-for-runners", "read_more_link", "Read this article for core exercises for runners"),
    ("strength-exercises-for-runners", "read_more_link", "Related: Should You Lift or Run First?"),
    ("can-runners-build-muscle", "race_ads", "Find Your Next Running Race"),
    ("can-runners-build-muscle", "race_ads", "Alpine Challenge 2026"),
    ("can-runners-build-muscle", "race_ads", "Run Wollongong 2026"),
    ("can-runners-build-muscle", "race_ads", "Here are some upcoming running events"),
    ("can-runners-build-muscle", "site_promo", "SportCoaching's running training plans"),
    ("can-runners-build-muscle", "site_promo", "Build Strength Into Your Running Programme"),
    ("hip-strengthening-exercises-for-runners", "image_credit", "Brianna Gilmartin / Verywell"),
    ("hip-strengthening-exercises-for-runners", "author_bio", "By Cherie Berkley, MS"),
    ("hip-strengthening-exercises-for-runners", "author_bio", "Berkley is a journalist"),
    ("hip-strengthening-exercises-for-runners", "editorial_note", "Read our editorial process"),
    ("hip-strengthening-exercises-for-runners", "share_and_reply", "Leave a Reply"),
    ("what-muscles-does-running-work", "category_label", "Sports & Activity"),
]


@pytest.mark.parametrize(("article_id", "rule", "snippet"), REMOVED)
def test_boilerplate_is_removed_and_recorded(
    real_articles: dict[str, Article], article_id: str, rule: str, snippet: str
) -> None:
    article = real_articles[article_id]
    assert snippet not in article.text
    assert any(r.rule == rule and snippet in r.text for r in article.removed)


KEPT = [
    ("what-muscles-does-running-work", "If you experience persistent pain, consult a physical therapist"),
    ("what-muscles-does-running-work", "Stance: when one foot is on the ground"),
    ("can-runners-build-muscle", "A 70kg runner should target 112–154 grams of protein daily"),
    (
        "can-runners-build-muscle",
        "| Calves (gastrocnemius, soleus) | High — loaded heavily every stride during push-off |",
    ),
    ("can-runners-build-muscle", "How much protein do runners need to build muscle?"),
    (
        "strength-exercises-for-runners",
        "This article does not present an exhaustive list of strength exercises for runners.",
    ),
    ("strength-exercises-for-runners", "• Calf raises (gastrocnemius focus)"),
    ("does-running-help-hamstrings", "the biceps femoris, semitendinosus, and semimembranosus"),
    ("hip-strengthening-exercises-for-runners", "A Word From Verywell"),
    ("hip-strengthening-exercises-for-runners", "Hip strength and flexibility go hand in hand"),
    ("hip-strengthening-exercises-for-runners", "Lenhart R, Thelen D, Heiderscheit B."),  # references are kept
    ("hip-strengthening-exercises-for-runners", "Selkowitz DM, Beneck GJ, Powers CM."),
]


@pytest.mark.parametrize(("article_id", "snippet"), KEPT)
def test_content_is_kept(real_articles: dict[str, Article], article_id: str, snippet: str) -> None:
    assert snippet in real_articles[article_id].text


def test_every_cleaned_sentence_is_verbatim_in_the_source_file(real_articles: dict[str, Article]) -> None:
    for article in real_articles.values():
        raw = (CORPUS / article.file).read_text(encoding="utf-8")
        for line in article.text.split("\n"):
            assert line.strip() in raw, (article.article_id, line)


def test_long_blank_runs_are_collapsed_and_ends_trimmed(real_articles: dict[str, Article]) -> None:
    for article in real_articles.values():
        assert "\n\n\n\n" not in article.text
        assert not article.text.endswith("\n\n")
        assert not article.text.startswith("\n")


def test_glued_heading_is_put_back_on_its_own_line() -> None:
    raw = (CORPUS / "001_b8f55c02e301bfb2.txt").read_text(encoding="utf-8")
    assert "steady-state running.What Running Actually Does to Muscle" in raw
    cleaned = clean(raw, "Can Runners Build Muscle?").text
    assert "steady-state running.\nWhat Running Actually Does to Muscle\n" in cleaned


def test_clean_text_without_boilerplate_is_unchanged() -> None:
    text = "A Title\n\nThe glutes extend the hip. They stabilise the pelvis.\n"
    result = clean(text, "A Title")
    assert result.text == text
    assert result.removed == ()


def test_removing_a_line_between_paragraphs_does_not_add_a_blank_run() -> None:
    text = "Title\n\nFirst paragraph.\n\nShare this post\n\nSecond paragraph.\n"
    assert clean(text, "Title").text == "Title\n\nFirst paragraph.\n\nSecond paragraph.\n"
