"""Golden tests: headings, lists, tables, FAQ pairs and references recovered from the real articles."""

from __future__ import annotations

import pytest

from ingest.models import Article
from ingest.structure import parse_structure


def _paths(article: Article) -> list[tuple[str, ...]]:
    return [s.path for s in article.sections]


@pytest.mark.parametrize(
    ("article_id", "path"),
    [
        (
            "what-muscles-does-running-work",
            ("What Muscles Does Running Work? A Muscle-by-Muscle Breakdown", "4. Hamstrings"),
        ),
        ("what-muscles-does-running-work", ("Muscles Used in Different Types of Running", "Hill Running")),
        ("what-muscles-does-running-work", ("FAQ: What Muscles Does Running Work?",)),
        ("what-muscles-does-running-work", ("Note on Safety and Individualisation",)),
        ("can-runners-build-muscle", ("Quick Answer",)),
        ("can-runners-build-muscle", ("What Running Actually Does to Muscle",)),
        ("can-runners-build-muscle", ("The Interference Effect: What the Research Actually Shows",)),
        ("can-runners-build-muscle", ("FAQ: Can Runners Build Muscle?",)),
        ("strength-exercises-for-runners", ("Isometric Core Exercises",)),
        ("does-running-help-hamstrings", ("Considerations and Precautions",)),
        ("hip-strengthening-exercises-for-runners", ("Are Your Hips Weak?", "The Standing Deep Squat Test")),
        ("hip-strengthening-exercises-for-runners", ("5 Hip-Strengthening Exercises",)),
        (
            "hip-strengthening-exercises-for-runners",
            ("5 Hip-Strengthening Exercises", "Challenge Yourself: Squat Variation"),
        ),
        ("hip-strengthening-exercises-for-runners", ("References",)),
    ],
)
def test_heading_hierarchy_is_recovered(
    real_articles: dict[str, Article], article_id: str, path: tuple[str, ...]
) -> None:
    assert path in _paths(real_articles[article_id])


def test_titles_come_from_the_text_or_the_manifest(real_articles: dict[str, Article]) -> None:
    assert real_articles["what-muscles-does-running-work"].title.startswith("What Muscles Does Running Work?")
    # 001 opens with "Quick Answer": its title comes from the manifest, and "Quick Answer" is a section.
    assert real_articles["can-runners-build-muscle"].title == "Can Runners Build Muscle?"
    assert real_articles["hip-strengthening-exercises-for-runners"].title == "5 Hip-Strengthening Exercises for Runners"


def test_table_rows_are_whole_and_carry_the_header(real_articles: dict[str, Article]) -> None:
    article = real_articles["can-runners-build-muscle"]
    rows = [b for b in article.blocks if b.kind == "table"]
    assert len(rows) == 7
    for b in rows:
        row = article.text[b.start : b.end]
        assert row.startswith("| ") and row.endswith(" |") and "\n" not in row
        assert b.prefix == "| Muscle group | Running stimulus | Best running type for development |"
        assert b.section == ("Which Muscles Does Running Build?",)


def test_faq_question_and_answer_stay_together(real_articles: dict[str, Article]) -> None:
    article = real_articles["can-runners-build-muscle"]
    faq = [article.text[b.start : b.end] for b in article.blocks if b.kind == "faq"]
    assert len(faq) == 5
    protein = next(f for f in faq if f.startswith("How much protein do runners need to build muscle?"))
    assert "A 70kg runner needs 112–154g of protein per day" in protein


def test_faq_answer_that_is_a_list_stays_with_its_question(real_articles: dict[str, Article]) -> None:
    article = real_articles["what-muscles-does-running-work"]
    block = next(
        b for b in article.blocks if article.text[b.start : b.end].startswith("How can I prevent muscle imbalances")
    )
    assert block.kind == "faq"
    assert article.text[block.start : block.end].endswith("- Vary terrains and running intensities.")


def test_list_items_keep_their_lead_in(real_articles: dict[str, Article]) -> None:
    article = real_articles["strength-exercises-for-runners"]
    block = next(b for b in article.blocks if "• Calf raises (gastrocnemius focus)" in article.text[b.start : b.end])
    assert block.kind == "list"
    assert article.text[block.start : block.end].startswith("Leg exercises for runners include:")


def test_reference_list_is_marked_so_answers_skip_it(real_articles: dict[str, Article]) -> None:
    article = real_articles["hip-strengthening-exercises-for-runners"]
    refs = [b for b in article.blocks if b.kind == "references"]
    assert len(refs) == 15
    assert all(b.section == ("References",) for b in refs)
    # Numbered exercise steps are not references.
    steps = next(b for b in article.blocks if "Lay down on your side" in article.text[b.start : b.end])
    assert steps.kind == "list"


def test_markdown_headings_set_levels() -> None:
    text = "# Calf Guide\n\n## Calves\n\nCalf raises work the soleus.\n\n### Bent knee\n\nBend the knee.\n"
    title, sections, blocks = parse_structure(text, None)
    assert title == "Calf Guide"
    assert [s.path for s in sections] == [("Calves",), ("Calves", "Bent knee")]
    assert [text[b.start : b.end] for b in blocks] == ["Calf raises work the soleus.", "Bend the knee."]
