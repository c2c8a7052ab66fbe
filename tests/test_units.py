"""Candidate answer units cut from the real articles' structure (through the fast-tier index)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from service.answering.units import POINTS_ELSEWHERE, Candidate, continues, extended


@pytest.fixture
def units_of(fake_index):
    """``units_of(article_id, section)``: the candidate units of that section's chunks, in reading order."""
    from service.answering.engine import open_search_index
    from service.answering.retrieval import Hit
    from service.answering.units import candidates

    index = open_search_index(fake_index, fake_index.embedding_model)

    def get(article_id: str, section: str) -> list[Candidate]:
        """``section`` "" is the article's opening, before any heading."""
        hits = [Hit(i, sc.chunk_id, sc.chunk, 0.0, 0.0, 0.0) for i, sc in enumerate(index.chunks)
                if sc.chunk.article_id == article_id and sc.chunk.section[-1:] == ((section,) if section else ())]
        assert hits, section
        return candidates(hits, index, max_window=3, list_budget=200)

    return get


def test_numbered_steps_become_one_steps_unit_with_their_lead_in(units_of) -> None:
    steps = [c for c in units_of("hip-strengthening-exercises-for-runners", "5 Hip-Strengthening Exercises")
             if c.kind == "steps" and c.text.startswith("To do a clamshell:")]
    assert len(steps) == 1
    assert "1. Lay down on your side" in steps[0].text and "3. Keep your feet together" in steps[0].text


def test_the_articles_own_questions_are_never_units(units_of) -> None:
    faq = units_of("what-muscles-does-running-work", "FAQ: What Muscles Does Running Work?")
    assert faq and not any("?" in part for c in faq for part in c.parts)
    assert any(c.text.startswith("Running works both.") for c in faq)


def test_a_lead_in_whose_items_were_lost_is_never_a_unit(units_of) -> None:
    warm = units_of("strength-exercises-for-runners", "Warm Up Exercises")
    assert warm and not any("include:" in c.text for c in warm)


def test_a_unit_opening_with_a_pronoun_carries_its_heading(units_of) -> None:
    hip = units_of("what-muscles-does-running-work", "1. Hip Flexors")
    they = [c for c in hip if c.parts[0].startswith("They contract during the swing phase")]
    assert they and all(c.label == "Hip Flexors" for c in they)


def test_a_list_keeps_its_lead_in_and_a_single_item_stands_alone(units_of) -> None:
    glance = units_of("what-muscles-does-running-work", "At a Glance: Muscles Used in Running")
    lists = [c for c in glance if c.kind == "list"]
    assert lists and lists[0].text.startswith("Here's a quick overview of the primary muscle groups involved:")
    assert any(c.kind == "item" and c.text.startswith("Calves (gastrocnemius and soleus)") for c in glance)


def test_a_teaser_that_only_announces_the_article_is_in_no_unit(units_of) -> None:
    opening = units_of("what-muscles-does-running-work", "")
    assert not any("Learn what muscles running works" in c.text for c in opening)
    # The window after it stays: announcing is what is left out, not the paragraph.
    assert any(c.text.startswith("Understanding the muscles used in running") for c in opening)


def test_the_authors_own_set_up_is_in_no_unit(units_of) -> None:
    opening = units_of("does-running-help-hamstrings", "")
    said = " ".join(c.text for c in opening)
    # "As a passionate runner, I have always been curious...", "I have often wondered whether...",
    # "...I am excited to share the insights I have gained": what the article will say, not what it says.
    assert "I have always been curious" not in said
    assert "I have often wondered" not in said
    assert "I am excited to share" not in said


def test_a_verdict_names_the_question_it_answers(units_of) -> None:
    can = units_of("can-runners-build-muscle", "FAQ: Can Runners Build Muscle?")
    verdict = next(c for c in can if c.parts[0].startswith("Yes — for both muscle building"))
    assert verdict.own_question.endswith("?") and "lift" in verdict.own_question.lower()
    assert not any(c.own_question for c in units_of("what-muscles-does-running-work", "") if c.first == 0)


def test_units_opening_with_an_faq_verdict_are_known(units_of) -> None:
    faq = units_of("what-muscles-does-running-work", "FAQ: What Muscles Does Running Work?")
    verdicts = {c.parts[0] for c in faq if c.opens_with_verdict}
    assert "Running works both." in verdicts  # a bare verdict right after the FAQ's question
    assert not any(c.opens_with_verdict for c in faq if c.parts[0].startswith("Long, steady runs"))
    can = units_of("can-runners-build-muscle", "FAQ: Can Runners Build Muscle?")
    assert any(c.parts[0].startswith("Yes — for both muscle building") and c.opens_with_verdict for c in can)


def test_a_sentence_that_refers_back_is_quoted_with_what_it_refers_to(units_of) -> None:
    hips = units_of("strength-exercises-for-runners", "Hip Strengthening Exercises for Runners")
    these = [c for c in hips if "should include all these movements" in c.text]
    assert these  # quoted, but never as its own opening: "these movements" are in the sentence before
    assert all(c.text.startswith("The hips include many muscles that control movement") for c in these)


def test_another_of_something_never_opens_a_unit(units_of) -> None:
    # "Another technique is to…" is the second of the techniques the sentence before names
    bridge = units_of("hip-strengthening-exercises-for-runners", "Hip Bridge Test")
    assert not any(c.parts[0].startswith("Another") for c in bridge)
    assert any(c.parts[0].startswith("The hip bridge test is") and c.parts[1].startswith("Another technique")
               for c in bridge if len(c.parts) > 1)


def test_a_step_that_continues_the_one_before_never_opens_a_unit(units_of) -> None:
    squat = units_of("hip-strengthening-exercises-for-runners", "The Standing Deep Squat Test")
    assert not any(c.parts[0].startswith("From there") for c in squat)
    # it is quoted with the step it continues
    assert any(c.parts[0] == "Squat down as far as you can." and len(c.parts) > 1
               and c.parts[1].startswith("From there") for c in squat)


@pytest.mark.parametrize(("section", "kept"), [
    ("The Type of Running Matters for Muscle Building", "Hill running is the second most muscle-stimulating"),
    ("Programming: How to Build Muscle as a Runner", "Better running technique distributes muscular load"),
])
def test_a_pointer_to_another_guide_is_in_no_unit(units_of, section: str, kept: str) -> None:
    # "Our hill running guide covers specific hill workout types...": what another guide says, not this one.
    said = " ".join(c.text for c in units_of("can-runners-build-muscle", section))
    assert "guide covers" not in said and "guide on building mileage safely" not in said
    assert kept in said  # the paragraph around it stays


@pytest.mark.parametrize(("sentence", "points"), [
    ("Our hill running guide covers specific hill workout types.", True),
    ("Strength training content for runners: Our running technique guide covers the mechanics.", True),
    ("For runners new to training, our guide on building mileage safely covers total load.", True),
    ("See our easy run guide for the right effort.", True),
    ("Read our guide on easy runs.", True),
    # content that merely says "our" or "shows"
    ("Our research article shows that cadence drops with fatigue.", False),
    ("Our post-run stretches show the calves recover faster.", False),
    ("Our favourite guide to glutes is simple, but research shows squats help.", False),
    ("Our bodies show that rest matters.", False),
])
def test_what_counts_as_a_pointer_to_another_guide(sentence: str, points: bool) -> None:
    assert bool(POINTS_ELSEWHERE.search(sentence)) is points


def test_a_list_drops_an_item_that_points_to_another_guide() -> None:
    from ingest.models import Chunk
    from service.answering.retrieval import Hit
    from service.answering.units import _lines, _list_candidates

    text = ("Build the base first:\n- Squats build the quads and glutes for runners every single week.\n"
            "- Our hill running guide covers specific hill workout types.\n- Calf raises build the calves.")
    spans, start = [], 0
    for line in text.split("\n"):
        spans.append((start, start + len(line)))
        start += len(line) + 1
    chunk = Chunk("a", "sha", "T", ("S",), 0, 0, len(text), text, "list", sentences=tuple(spans))
    units = _list_candidates(Hit(0, "c", chunk, 0.0, 0.0, 0.0), 0, _lines(chunk), 200)
    shown = [c.text for c in units]
    assert shown[0].startswith("Build the base first: Squats build") and "Calf raises" in shown[0]
    assert not any("guide covers" in t for t in shown)


@pytest.fixture
def index(fake_index):
    from service.answering.engine import open_search_index

    return open_search_index(fake_index, fake_index.embedding_model)


def test_a_unit_is_extended_by_the_sentence_that_goes_on_with_it(units_of, index) -> None:
    impact = units_of("does-running-help-hamstrings", "The Impact of Running on Hamstrings")
    however = next(c for c in impact if c.parts[-1].startswith("However, it is important to note"))
    longer = extended(however, index)
    assert longer is not None
    assert longer.parts[:-1] == however.parts and longer.last == however.last + 1
    assert longer.parts[-1].startswith("This means that while running can improve hamstring strength")
    # the citation quotes the longer span, exactly
    assert longer.hit.chunk.text[longer.start:longer.end].endswith("overall range of motion.")
    assert longer.start == however.start and longer.vec is not None and len(longer.sentence_vecs) == len(longer.parts)


def test_a_sentence_that_only_elaborates_extends_nothing(units_of, index) -> None:
    role = units_of("does-running-help-hamstrings", "Understanding the Role of Hamstrings")
    # "These muscles play a crucial role…" says more about the hamstrings, but draws no point from the
    # sentence before: the window that holds both is a unit of its own, scored as one
    opening = next(c for c in role if c.parts == [c.parts[0]] and c.parts[0].startswith("The hamstrings are a group"))
    assert extended(opening, index) is None
    assert any(c.first == opening.first and c.parts[-1].startswith("These muscles play") for c in role)


@pytest.mark.parametrize(("sentence", "goes_on"), [
    ("This means that while running can improve hamstring strength, it may not...", True),
    ("However, it is important to note that running primarily targets the eccentric phase.", True),
    ("Additionally, the hip stabilizers control the positions of your knees.", True),
    ("This can cause overuse injuries, as other muscles work to compensate.", True),
    ("These muscles play a crucial role in various athletic movements.", False),
    ("Over time, this constant engagement can lead to increased strength.", False),
    ("Strong and flexible hamstrings are essential for optimal running performance.", False),
    ("Lateral lunges involve the adductor muscles and hip stabilizers more.", False),
    ("It may be challenging to determine if a weak hip is a source of running pain.", False),
])
def test_what_counts_as_going_on_with_the_sentence_before(sentence: str, goes_on: bool) -> None:
    assert continues(sentence) is goes_on


class _Sentences:
    """The two things ``extended`` asks of an index: whether a span is planted, and a sentence's vector."""

    def __init__(self, planted: bool = False) -> None:
        self.planted = planted

    def is_planted(self, chunk, start: int, end: int) -> bool:
        return self.planted and start > 0

    def sentence_vector(self, chunk_index: int, sentence: int):
        import numpy as np

        return np.full(3, float(sentence), dtype=np.float32)


def _opening_of(text: str):
    """The one-sentence unit that opens a made-up chunk of ``text``, split as ingest splits sentences."""
    from ingest.models import Chunk
    from ingest.sentences import sentence_spans
    from service.answering.retrieval import Hit
    from service.answering.units import _lines, _prose_candidates

    spans = sentence_spans(text)
    chunk = Chunk("a", "sha", "T", ("S",), 0, 0, len(text), text, "paragraph", sentences=tuple(spans))
    units = _prose_candidates(Hit(0, "c", chunk, 0.0, 0.0, 0.0), 0, _lines(chunk), 1)
    return next(c for c in units if c.first == 0)


@pytest.mark.parametrize(("after", "planted", "grows"), [
    (" However, weak hips are common in runners.", False, True),
    (" However, are your hips weak?", False, False),  # the article's own question
    (" Additionally, the tests for it include:", False, False),  # a lead-in
    (" Also, our hip strength guide covers the rest.", False, False),  # what another guide says
    (" However, weak hips are common in runners.", True, False),  # a planted sentence
    ("\nHowever, weak hips are common in runners.", False, False),  # another paragraph
    (" Weak hips are common in runners.", False, False),  # a point of its own
])
def test_what_a_unit_is_never_extended_by(after: str, planted: bool, grows: bool) -> None:
    opening = _opening_of("Hip strength matters for every runner." + after)
    longer = extended(opening, _Sentences(planted))  # type: ignore[arg-type]
    assert (longer is not None) is grows
    if longer is not None:
        assert longer.hit.chunk.text[longer.start:longer.end] == " ".join(longer.parts)
        assert longer.sentence_vecs[-1][0] == 1.0 and longer.completes is opening


def test_only_prose_is_extended() -> None:
    opening = _opening_of("Hip strength matters for every runner. However, weak hips are common in runners.")
    assert extended(opening, _Sentences()) is not None  # type: ignore[arg-type]
    for kind in ("list", "steps", "item", "row"):  # whole as cut, even where a sentence would go on
        assert extended(replace(opening, kind=kind), _Sentences()) is None  # type: ignore[arg-type]


def _lists_of(text: str):
    """The list units of a made-up chunk of ``text``, split as ingest splits sentences."""
    from ingest.models import Chunk
    from ingest.sentences import sentence_spans
    from service.answering.retrieval import Hit
    from service.answering.units import _lines, _list_candidates

    chunk = Chunk("a", "sha", "T", ("S",), 0, 0, len(text), text, "list", sentences=tuple(sentence_spans(text)))
    return _list_candidates(Hit(0, "c", chunk, 0.0, 0.0, 0.0), 0, _lines(chunk), 200)


def test_a_first_step_ending_in_a_colon_is_a_step_not_the_lists_lead_in() -> None:
    steps = next(c for c in _lists_of("1. Prepare as follows:\n2. Squat down.\n3. Stand up.") if c.kind == "steps")
    assert steps.lead_in == "" and steps.layout == ["step", "step", "step"]
    led = next(c for c in _lists_of("To do a squat:\n1. Squat down.\n2. Stand up.") if c.kind == "steps")
    assert led.lead_in == "To do a squat:"


def test_a_list_item_shown_alone_or_in_its_list_ends_as_a_sentence() -> None:
    units = _lists_of("Sprinting brings:\n- Higher activation of gluteus maximus, hamstrings and calves\n- More power")
    whole = next(c for c in units if c.kind == "list")
    assert whole.parts == ["Sprinting brings: Higher activation of gluteus maximus, hamstrings and calves.",
                           "More power."]
    assert [c.parts for c in units if c.kind == "item"] == [
        ["Higher activation of gluteus maximus, hamstrings and calves."]]


def test_a_paragraph_announcing_several_things_is_extended_until_it_has_named_them(units_of, index) -> None:
    benefits = units_of("does-running-help-hamstrings", "Benefits of Running for Hamstrings")
    window = next(c for c in benefits if c.parts[0].startswith("Regular running can lead to several benefits")
                  and len(c.parts) == 3)
    longer = extended(window, index)
    assert longer is not None and longer.parts[-1].startswith("The strengthening of the hamstrings")
    # that fourth benefit opens with no word that goes on from the third: the announcement carries it
    assert not continues(longer.parts[-1])
    assert extended(longer, index) is None  # the paragraph ends there


@pytest.mark.parametrize(("text", "grows"), [
    ("Hip strength brings several benefits for runners. Weak hips are common in runners.", True),
    ("Baudo says there are two simple tests you can try at home. Weak hips are common in runners.", True),
    ("Hip strength matters for every runner. Weak hips are common in runners.", False),
    ("Strong hips carry two legs through every stride. Weak hips are common in runners.", False),
])
def test_what_counts_as_announcing_several_things(text: str, grows: bool) -> None:
    assert (extended(_opening_of(text), _Sentences()) is not None) is grows  # type: ignore[arg-type]
