"""Composing an answer from candidate units (pure), on the real articles through the fast-tier index."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from evals.scoring import plain
from service.answering.citations import Renderer, Unit, render
from service.answering.compose import (
    AnswerParams,
    already_quoted,
    asked_kind,
    complete,
    compose,
    gather,
    introductions,
    select,
    set_lists,
    to_units,
)
from service.answering.query import Query
from service.answering.question import AnswerType
from service.answering.retrieval import Hit, SearchIndex
from service.answering.units import Candidate, extended

MUSCLES = "what-muscles-does-running-work"


@pytest.fixture
def index(fake_index) -> SearchIndex:
    from service.answering.engine import open_search_index

    return open_search_index(fake_index, fake_index.embedding_model)


def hits_of(index: SearchIndex, article_id: str, section: str) -> list[Hit]:
    return [Hit(i, sc.chunk_id, sc.chunk, 0.0, 0.0, 0.0) for i, sc in enumerate(index.chunks)
            if sc.chunk.article_id == article_id and sc.chunk.section[-1:] == (section,)]


def asking(kind: AnswerType) -> Query:
    return Query("q", "q", [], [], [], 1.0, answer_type=kind)


def test_an_faq_verdict_answers_only_a_yes_no_question(index: SearchIndex) -> None:
    hits = hits_of(index, MUSCLES, "FAQ: What Muscles Does Running Work?")

    def openings(kind: AnswerType) -> set[str]:
        cands, _ = gather(asking(kind), hits, index, AnswerParams())
        return {c.parts[0] for c in cands}

    assert "Running works both." in openings("yes_no")
    assert "Running works both." not in openings("set")
    # The content after the verdict still answers a question of another kind.
    assert any(p.startswith("Long, steady runs build endurance") for p in openings("set"))
    # "both" of what the FAQ asked ("…your glutes and core?") is a verdict too, however long: alone it
    # points at something never said; the sentence after it still answers.
    leaning = "Running activates both, but many runners underuse their glutes."
    assert leaning in openings("yes_no") and leaning not in openings("set")
    assert "Strength training helps restore balance and prevent overuse injuries." in openings("set")


def test_the_most_likely_unit_opens_the_answer_and_its_passage_stays_together(index: SearchIndex) -> None:
    hip = hits_of(index, MUSCLES, "1. Hip Flexors")
    glutes = hits_of(index, MUSCLES, "2. Glutes")
    cands, _ = gather(asking("other"), hip + glutes, index, AnswerParams())
    singles = [c for c in cands if c.kind == "prose" and c.first == c.last]
    in_hip = next(c for c in singles if c.hit.chunk_id == hip[0].chunk_id)
    late, early = sorted((c for c in singles if c.hit.chunk_id == glutes[0].chunk_id), key=lambda c: -c.start)[:2]
    assert late.start > early.start and early.end <= late.start  # two sentences of the glutes passage, apart

    params = replace(AnswerParams(), keep_ratio=0.1, redundancy=1.01, max_words=500)
    chosen = select(asking("other"), [in_hip, late, early], np.array([0.8, 0.9, 0.7]), params)
    # The glutes passage ranked second in retrieval, but its unit is the likeliest: it opens, in the
    # article's order with its other unit, and the hip flexors unit follows.
    assert [id(c) for c in chosen] == [id(early), id(late), id(in_hip)]


def test_a_sentence_inside_a_chosen_quote_is_already_quoted(index: SearchIndex) -> None:
    # The referral to a physical therapist is added after the answer is chosen; in the knee section it
    # is the last sentence of a quote the answer may already hold, and must not be said twice.
    knee = hits_of(index, "strength-exercises-for-runners", "Knee Exercises for Runners")
    hit = next(h for h in knee if "physical therapist" in h.chunk.text)
    spans = hit.chunk.sentences
    last = next(i for i, (s, e) in enumerate(spans) if "physical therapist" in hit.chunk.text[s:e])
    assert last >= 2

    def unit(first: int, end: int) -> Unit:
        return Unit(hit.chunk.text[spans[first][0]:spans[end][1]], hit, spans[first][0], spans[end][1], 0.0, 0)

    referral = unit(last, last)
    assert already_quoted(referral, [unit(last - 2, last)])  # the end of a three-sentence quote
    assert already_quoted(referral, [unit(last, last)])
    assert not already_quoted(referral, [unit(0, last - 1)])  # the sentences before it only
    assert not already_quoted(referral, [])


def test_a_verdict_on_another_faq_question_does_not_answer_a_yes_no_question(index: SearchIndex) -> None:
    can = hits_of(index, "can-runners-build-muscle", "FAQ: Can Runners Build Muscle?")

    def verdicts(focus: list[str]) -> set[str]:
        cands, _ = gather(replace(asking("yes_no"), focus=focus), can, index, AnswerParams())
        return {c.parts[0][:30] for c in cands if c.opens_with_verdict}

    assert "Yes — for both muscle building" in verdicts(["lift", "weights"])  # "Should runners lift weights?"
    # "do I need a running coach?": no FAQ here asks about a coach, so no "Yes —" answers it
    assert verdicts(["coach"]) == set()
    assert "Yes — for both muscle building" in verdicts([])  # no focus: nothing to judge the FAQ by


def test_a_set_spread_over_child_sections_is_answered_by_each_member(index: SearchIndex) -> None:
    hips = "hip-strengthening-exercises-for-runners"
    parent = hits_of(index, hips, "Are Your Hips Weak?")
    bridge = hits_of(index, hips, "Hip Bridge Test")
    squat = hits_of(index, hips, "The Standing Deep Squat Test")

    def answer(content: list[str]) -> list[Candidate]:
        query = replace(asking("set"), content=content)
        cands, _ = gather(query, parent + bridge + squat, index, AnswerParams(chunks_considered=3))
        # The parent's introduction ("…two simple tests you can try at home") is the likeliest unit.
        probs = np.array([0.9 if c.hit.chunk_id == parent[0].chunk_id and c.first == 0 else 0.05 for c in cands])
        return select(query, cands, probs, AnswerParams())

    chosen = answer(["home", "tests", "weak", "hips"])
    sections = [c.hit.chunk.section[-1] for c in chosen]
    assert sections[0] == "Are Your Hips Weak?"
    # each test, by its section's opening sentence, though far less likely than the introduction
    assert {"Hip Bridge Test", "The Standing Deep Squat Test"} <= set(sections)
    assert all(c.first == 0 for c in chosen if c.hit.chunk.section[-1] != "Are Your Hips Weak?")
    assert sum(c.words for c in chosen) <= AnswerParams().set_words
    # The child headings don't name what this question asks for: they are not its members.
    assert [c.hit.chunk.section[-1] for c in answer(["pain", "physical", "therapist"])] == ["Are Your Hips Weak?"]


def test_an_articles_introduction_has_no_members_and_no_other_article_lends_any(index: SearchIndex) -> None:
    intro = [Hit(i, sc.chunk_id, sc.chunk, 0.0, 0.0, 0.0) for i, sc in enumerate(index.chunks)
             if sc.chunk.article_id == "hip-strengthening-exercises-for-runners" and not sc.chunk.section]
    glance = hits_of(index, MUSCLES, "At a Glance: Muscles Used in Running")
    faq = hits_of(index, MUSCLES, "FAQ: What Muscles Does Running Work?")
    query = replace(asking("set"), content=["muscles", "running"])
    cands, _ = gather(query, intro + glance + faq, index, AnswerParams(chunks_considered=4))
    probs = np.array([0.9 if c.hit.chunk_id == intro[0].chunk_id else 0.05 for c in cands])
    assert any(c.hit.chunk.article_id == MUSCLES for c in cands)  # their headings name "muscles", "running"

    chosen = select(query, cands, probs, AnswerParams())

    assert {c.hit.chunk_id for c in chosen} == {intro[0].chunk_id}


def test_a_further_unit_that_answers_more_of_the_question_beats_a_slightly_likelier_one(index: SearchIndex) -> None:
    # "Which lunge works the adductors, and why do they matter for the hip?": once the lunge is there,
    # the reason adds what the answer lacks; another word on lunges adds nothing.
    hits = [Hit(i, sc.chunk_id, sc.chunk, 0.0, 0.0, 0.0) for i, sc in enumerate(index.chunks[:3])]

    def unit(hit: Hit, text: str) -> Candidate:
        return Candidate(hit, 0, "prose", 0, 0, 0, 10, [text])

    lead = unit(hits[0], "Lateral lunges involve the adductor muscles more.")
    same_again = unit(hits[1], "Reverse lunges are gentler on the knees.")
    the_reason = unit(hits[2], "Together they stabilise your hip while you run.")
    query = Query("q", "q", [], [], ["lunge", "adductors", "stabilise", "hip"], 1.0, answer_type="other")
    probs = np.array([0.9, 0.85, 0.75])
    params = replace(AnswerParams(), keep_ratio=0.1, redundancy=1.01, max_words=500, max_units=2)

    def second(coverage: float) -> Candidate:
        chosen = select(query, [lead, same_again, the_reason], probs, replace(params, coverage=coverage))
        assert chosen[0] is lead and len(chosen) == 2
        return chosen[1]

    assert second(0.0) is same_again  # likelihood alone
    # 0.75 x (1 + 0.5 x 2/4) = 0.94 beats 0.85 x 1, but not 0.85 x (1 + 0.5 x 1/4) = 0.96: what the
    # lead already covers earns nothing
    assert second(0.5) is the_reason


def test_what_an_earlier_pick_covered_earns_a_later_one_nothing(index: SearchIndex) -> None:
    hits = [Hit(i, sc.chunk_id, sc.chunk, 0.0, 0.0, 0.0) for i, sc in enumerate(index.chunks[:4])]

    def unit(hit: Hit, text: str) -> Candidate:
        return Candidate(hit, 0, "prose", 0, 0, 0, 10, [text])

    lead = unit(hits[0], "Lateral lunges involve the adductor muscles more.")
    pelvis = unit(hits[1], "They stabilise the pelvis during each stride.")  # adds "stabilise"
    knees = unit(hits[2], "Good stability work should stabilise the knees too.")  # "stabilise" again
    hip = unit(hits[3], "Strong hip muscles protect the knees.")  # adds "hip"
    query = Query("q", "q", [], [], ["lunge", "adductors", "stabilise", "hip"], 1.0, answer_type="other")
    params = replace(AnswerParams(), keep_ratio=0.1, redundancy=1.01, max_words=500, max_units=3, coverage=0.5)
    chosen = select(query, [lead, pelvis, knees, hip], np.array([0.9, 0.8, 0.78, 0.72]), params)
    # first pick: 0.8 x 1.125 (pelvis); then "stabilise" is covered: 0.78 (knees) loses to 0.72 x 1.125
    assert [id(c) for c in chosen] == [id(lead), id(pelvis), id(hip)]


def test_a_chosen_unit_takes_the_sentences_that_go_on_with_it_while_they_fit(index: SearchIndex) -> None:
    impact = hits_of(index, "does-running-help-hamstrings", "The Impact of Running on Hamstrings")
    cands, _ = gather(asking("other"), impact, index, AnswerParams())
    over_time = next(c for c in cands if c.kind == "prose" and c.parts[-1].startswith("Over time, this constant"))
    # "However, …" and then "This means that …" go on with it, to the paragraph's end
    [whole] = complete([over_time], index, room=200, redundancy=0.85)
    assert whole.last == over_time.last + 2 and whole.parts[-1].startswith("This means that")
    assert whole.parts[:-2] == over_time.parts and whole.completes is over_time  # scored as the unit it completes
    however = len(whole.parts[-2].split())
    [part] = complete([over_time], index, room=however, redundancy=0.85)
    assert part.last == over_time.last + 1 and part.completes is over_time  # room for one more sentence, not two
    assert complete([over_time], index, room=however - 1, redundancy=0.85) == [over_time]


def test_a_unit_is_not_extended_over_a_quote_already_chosen(index: SearchIndex) -> None:
    impact = hits_of(index, "does-running-help-hamstrings", "The Impact of Running on Hamstrings")
    cands, _ = gather(asking("other"), impact, index, AnswerParams())
    prose = [c for c in cands if c.kind == "prose"]
    however = next(c for c in prose if c.first == c.last and c.parts[0].startswith("However, it is important"))
    before = next(c for c in prose if c.last == however.first - 1)  # "However, …" goes on with this one
    out = complete([before, however], index, room=200, redundancy=0.85)
    assert out[0] is before  # its next sentence is already quoted by the next unit: said once
    assert out[1].first == however.first and out[1].parts[-1].startswith("This means that")


def test_a_unit_is_not_extended_by_a_sentence_another_unit_says_again(index: SearchIndex) -> None:
    impact = hits_of(index, "does-running-help-hamstrings", "The Impact of Running on Hamstrings")
    cands, _ = gather(asking("other"), impact, index, AnswerParams())
    however = next(c for c in cands if c.kind == "prose" and c.first == c.last
                   and c.parts[0].startswith("However, it is important"))
    means = extended(however, index)
    assert means is not None
    # another chosen unit already says "This means that …" (quoted elsewhere): the extension would repeat it
    echo = replace(however, parts=[means.parts[-1]], sentence_vecs=[means.sentence_vecs[-1]], start=-2, end=-1)
    assert complete([however, echo], index, room=200, redundancy=0.85)[0] is however
    assert complete([however], index, room=200, redundancy=0.85)[0].last == however.last + 1


class _Picks:
    """A selection model that finds one unit likely and every other one unlikely."""

    def __init__(self, cands: list[Candidate], pick: Candidate) -> None:
        self.probs = np.array([0.9 if c is pick else 0.01 for c in cands])

    def probability(self, x: np.ndarray) -> np.ndarray:
        assert len(x) == len(self.probs)
        return self.probs


def test_an_answer_carries_its_passage_to_its_point(index: SearchIndex) -> None:
    impact = hits_of(index, "does-running-help-hamstrings", "The Impact of Running on Hamstrings")
    query = asking("other")
    cands, _ = gather(query, impact, index, AnswerParams())
    however = next(c for c in cands if c.kind == "prose" and c.first == c.last
                   and c.parts[0].startswith("However, it is important"))
    qvec = np.zeros(index.chunk_vectors.shape[1], dtype=np.float32)
    units = compose(query, qvec, impact, index, AnswerParams(), _Picks(cands, however))  # type: ignore[arg-type]
    assert [u.text[:24] for u in units] == ["However, it is important", "This means that while ru"]
    assert {(u.start, u.end) for u in units} == {(however.start, extended(however, index).end)}  # type: ignore[union-attr]
    assert all(u.score == 0.9 for u in units)  # as likely as the unit it completes


def _asking_which(message: str, focus: list[str]) -> Query:
    return Query(message, message.lower(), [], [], focus, 1.0, answer_type="set", focus=focus)


def test_the_set_asked_for_is_a_list_of_its_members_named_for_the_question(index: SearchIndex) -> None:
    glance = hits_of(index, MUSCLES, "At a Glance: Muscles Used in Running")
    builds = hits_of(index, MUSCLES, "How Running Builds Muscle (and When It Doesn't)")
    which = _asking_which("Which muscles does running work?", ["muscles", "running"])
    cands, _ = gather(which, glance + builds, index, AnswerParams())
    lists = {c.text[:24]: i for i, c in enumerate(cands) if c.kind == "list"}
    overview, improving = lists["Here's a quick overview "], lists["Running builds muscle by"]
    # every item of the overview names a muscle group; "Muscular endurance. Tendon stiffness…" names none
    assert set_lists(which, cands, index.lexicon) == {overview}
    assert improving not in set_lists(which, cands, index.lexicon)
    # the heading must name the rest of the question: the overview is no answer to "which muscles does
    # running build?", nor to a question that asks for no set or for another kind of member
    build = _asking_which("Which muscles does running build?", ["muscles", "running", "build"])
    assert set_lists(build, cands, index.lexicon) == set()
    assert set_lists(replace(which, answer_type="other"), cands, index.lexicon) == set()
    drills = _asking_which("Which drills does running need?", ["drills", "running"])
    assert set_lists(drills, cands, index.lexicon) == set()


def test_the_set_asked_for_leads_the_answer_however_the_weights_scored_it(index: SearchIndex) -> None:
    glance = hits_of(index, MUSCLES, "At a Glance: Muscles Used in Running")
    intro = [Hit(i, sc.chunk_id, sc.chunk, 0.0, 0.0, 0.0) for i, sc in enumerate(index.chunks)
             if sc.chunk.article_id == MUSCLES and sc.chunk.section == ()]
    which = _asking_which("Which muscles does running work?", ["muscles", "running"])
    cands, _ = gather(which, intro + glance, index, AnswerParams())
    lists = set_lists(which, cands, index.lexicon)
    [overview] = lists
    probs = np.array([0.2 if i == overview else 0.9 for i in range(len(cands))])  # the prose scored likelier
    assert select(which, cands, probs, AnswerParams())[0] is not cands[overview]
    chosen = select(which, cands, probs, AnswerParams(), lists)
    assert chosen[0] is cands[overview]
    assert select(which, cands, np.where(np.arange(len(cands)) == overview, 0.01, 0.9), AnswerParams(),
                  lists)[0] is not cands[overview]  # unless it is too unlikely to be quoted at all


def test_a_set_question_weighs_the_best_list_retrieved_even_below_the_chunks_considered(index: SearchIndex) -> None:
    intro = [Hit(i, sc.chunk_id, sc.chunk, 0.0, 0.0, 0.0) for i, sc in enumerate(index.chunks)
             if sc.chunk.article_id == MUSCLES and sc.chunk.section == ()]
    prose = [h for h in hits_of(index, MUSCLES, "2. Glutes") + hits_of(index, MUSCLES, "3. Quadriceps")
             + hits_of(index, MUSCLES, "4. Hamstrings") if h.chunk.kind == "paragraph"]
    glance = hits_of(index, MUSCLES, "At a Glance: Muscles Used in Running")
    hits = (intro + prose)[:4] + glance
    which = _asking_which("Which muscles does running work?", ["muscles", "running"])
    cands, _ = gather(which, hits, index, AnswerParams(chunks_considered=4))
    assert any(c.hit.chunk.kind == "list" and c.hit.chunk_id == glance[0].chunk_id for c in cands)
    others, _ = gather(replace(which, answer_type="other"), hits, index, AnswerParams(chunks_considered=4))
    assert not any(c.hit.chunk_id == glance[0].chunk_id for c in others)


HIPS = "hip-strengthening-exercises-for-runners"


def test_a_list_reads_as_a_list_under_its_lead_in_and_prose_after_it_as_a_new_paragraph(index: SearchIndex) -> None:
    glance = hits_of(index, MUSCLES, "At a Glance: Muscles Used in Running")
    bridge = hits_of(index, HIPS, "Banded Side Step")  # the bridge's own heading is missing from the article
    cands, _ = gather(asking("procedure"), glance + bridge, index, AnswerParams())
    overview = next(c for c in cands if c.kind == "list" and c.hit.chunk_id == glance[0].chunk_id)
    steps = next(c for c in cands if c.kind == "steps" and c.lead_in == "To do a bridge:")
    posterior, includes = (next(c for c in cands if c.kind == "prose" and c.first == c.last and c.text.startswith(s))
                           for s in ("Bridging targets the posterior chain", "The posterior chain includes"))
    units = to_units([posterior, steps, overview, includes], [0.9, 0.8, 0.7, 0.6])
    renderer = Renderer()
    for u in units:
        renderer.add(u)
    text = renderer.rendered().text
    assert text.split("\n") == [
        f"{posterior.text} [1]",
        "",
        "To do a bridge:",
        "1. Lay on the floor with both feet flat and knees bent and hip-width apart. [2] Hands are at your sides. [2]",
        "2. Use your feet to press up and raise your glutes off the ground. [2]",
        "3. Pause at the top of the movement and lower your glutes back to the floor. [2]",
        "",
        "Here's a quick overview of the primary muscle groups involved:",
        "- Hip flexors (iliopsoas and rectus femoris) lift the leg and drive the knee forward. [3]",
        *[f"- {part} [3]" for part in overview.parts[1:]],
        "",
        f"{includes.text} [4]",
    ]
    assert len(overview.parts) == 7  # every group of the overview, one line each
    # Layout adds no words: the answer says what its units say, and the citations are as before.
    assert " ".join(u.text for u in units).split() == plain(text).split()
    assert [c.quote for c in renderer.citations] == [c.hit.chunk.text[c.start : c.end]
                                                    for c in (posterior, steps, overview, includes)]


def test_a_list_without_a_lead_in_still_opens_its_own_lines(index: SearchIndex) -> None:
    glance = hits_of(index, MUSCLES, "At a Glance: Muscles Used in Running")
    cands, _ = gather(asking("set"), glance, index, AnswerParams())
    overview = next(c for c in cands if c.kind == "list")
    bare = replace(overview, first=overview.first + 1, parts=[overview.parts[0].split(": ", 1)[1], *overview.parts[1:]])
    assert bare.lead_in == ""
    opening = render(to_units([bare], [0.9])).text
    assert opening.startswith("- Hip flexors (") and opening.count("\n- ") == 6
    hip = next(c for c in gather(asking("other"), hits_of(index, MUSCLES, "1. Hip Flexors"), index,
                                 AnswerParams())[0] if c.kind == "prose")
    after_prose = render(to_units([hip, bare], [0.9, 0.8])).text
    assert f"{hip.text} [1]\n\n- Hip flexors (" in after_prose


def asking_set(message: str, corrections: dict[str, str] | None = None) -> Query:
    return Query(message, message, [], [], [], 1.0, corrections=corrections or {}, answer_type="set")


def hip_article(index: SearchIndex, *sections: str) -> list[Hit]:
    return [Hit(i, sc.chunk_id, sc.chunk, 0.0, 0.0, 0.0) for i, sc in enumerate(index.chunks)
            if sc.chunk.article_id == HIPS and sc.chunk.section[:1] and sc.chunk.section[0] in sections]


def test_a_set_question_asks_for_the_kind_it_names_read_with_its_typos_repaired() -> None:
    assert asked_kind(asking_set("best excercises for weak hips", {"excercises": "exercises"})) == "exercise"
    assert asked_kind(asking_set("Which muscles does running work?")) == "muscle_group"
    assert asked_kind(asking_set("What are the key rules for runners?")) is None
    assert asked_kind(replace(asking_set("Which exercises help?"), answer_type="other")) is None


def test_exercises_given_a_paragraph_each_are_the_set_by_the_sentences_that_introduce_them(index: SearchIndex) -> None:
    hits = hip_article(index, "Are Your Hips Weak?", "5 Hip-Strengthening Exercises", "Banded Side Step",
                       "Quadruped Hip Extension")
    query = asking_set("Which exercises strengthen the hips?")
    cands, _ = gather(query, hits, index, replace(AnswerParams(), chunks_considered=len(hits)))
    longest_first = np.argsort([-c.words for c in cands], kind="stable")  # a whole paragraph is no opening
    intros = introductions(query, cands, longest_first, index.lexicon)
    assert {cands[i].text for i in intros} == {
        "The squat is a great overall hip-strengthening exercise because it targets all of the gluteal muscle "
        "groups: the gluteus maximus, and particularly the gluteus medius and gluteus minimus.",
        "The clamshell targets the gluteus medius.",
        "The banded side step is excellent at activating and strengthening your gluteus medius and gluteus minimus.",
        "Bridging targets the posterior chain, which refers to all of the muscles on the back side of your body.",
        "The quadruped hip extension is a well-regarded overall exercise for runners.",
    }  # not "The hip bridge test is…" nor "The standing deep squat test is…": tests named after exercises
    # The likeliest opening of an exercise stands for it: order decides, not the article.
    squats = [i for i, c in enumerate(cands) if c.first == c.last and c.text.startswith("Squats engage your core")]
    first_squats = np.asarray([*squats, *(i for i in range(len(cands)) if i not in squats)])
    assert cands[introductions(query, cands, first_squats, index.lexicon)[0]].text.startswith("Squats engage")

    # Two exercises are no set; nor is a question that asks for muscles.
    two = [h for h in hip_article(index, "Quadruped Hip Extension", "Banded Side Step")
           if not h.chunk.text.startswith("Bridging")]
    few, _ = gather(query, two, index, replace(AnswerParams(), chunks_considered=len(two)))
    assert introductions(query, few, np.arange(len(few)), index.lexicon) == []
    muscles = asking_set("Which muscles do hip exercises work?")
    assert introductions(muscles, cands, np.arange(len(cands)), index.lexicon) == []


def test_the_introduced_exercises_answer_a_set_question_before_likelier_prose(index: SearchIndex) -> None:
    hits = hip_article(index, "5 Hip-Strengthening Exercises", "Banded Side Step", "Quadruped Hip Extension")
    query = asking_set("Which exercises strengthen the hips?")
    cands, _ = gather(query, hits, index, replace(AnswerParams(), chunks_considered=len(hits)))
    probs = np.array([0.9 if c.text.startswith("A 2013 study") else 0.01 for c in cands])
    chosen = select(query, cands, probs, AnswerParams(), lexicon=index.lexicon)
    openings = [c.text.split()[:3] for c in chosen]
    assert ["The", "clamshell", "targets"] in openings and ["The", "quadruped", "hip"] in openings
    assert all(c.first == c.last for c in chosen[:4])
    assert sum(c.words for c in chosen) <= AnswerParams().set_words
    # without the lexicon to name exercises, the likeliest unit leads as before
    assert select(query, cands, probs, AnswerParams())[0].text.startswith("A 2013 study")


def test_an_exercise_set_weighs_the_further_chunks_of_the_best_chunks_article(index: SearchIndex) -> None:
    hips = hip_article(index, "5 Hip-Strengthening Exercises", "Quadruped Hip Extension")
    other = hits_of(index, MUSCLES, "2. Glutes")
    hits = hips[:1] + other + hips[1:]
    params = replace(AnswerParams(), chunks_considered=1)
    considered = {c.hit.chunk_id for c in gather(asking_set("Which exercises strengthen the hips?"), hits, index,
                                                 params)[0]}
    # every chunk with a unit other than steps (steps answer no set)
    every = replace(params, chunks_considered=len(hips))
    quotable = {c.hit.chunk_id for c in gather(asking("other"), hips, index, every)[0] if c.kind != "steps"}
    assert len(quotable) > 1
    assert quotable <= considered and not {h.chunk_id for h in other} & considered
    muscles = {c.hit.chunk_id for c in gather(asking_set("Which muscles work in a squat?"), hits, index, params)[0]}
    prose = {h.chunk_id for h in hips[1:] if h.chunk.kind == "paragraph"}
    assert prose and not prose & muscles  # a set of muscles weighs a list further down, no more


def test_a_list_right_after_another_list_opens_under_its_own_heading(index: SearchIndex) -> None:
    hits = hip_article(index, "Banded Side Step")
    cands, _ = gather(asking("procedure"), hits, index, AnswerParams())
    bridge = next(c for c in cands if c.kind == "steps" and c.lead_in == "To do a bridge:")
    variation = next(c for c in cands if c.kind == "steps" and c.hit.chunk.section[-1].endswith("Bridge Variation"))
    assert variation.lead_in == ""
    text = render(to_units([bridge, variation], [0.9, 0.8])).text
    # not steps 4-7 of the bridge: a new paragraph, named by its heading
    assert "floor. [1]\n\nChallenge Yourself: Bridge Variation:\n1. Set up the same as you would" in text
    assert render(to_units([variation], [0.9])).text.startswith("1. Set up the same")  # alone it needs no name
    # with no name to give (a heading that asks, say), it still starts a paragraph of its own
    unnamed = render(to_units([bridge], [0.9]) + to_units([variation], [0.8])).text
    assert "floor. [1]\n\n1. Set up the same" in unnamed
    # a list after prose is a new paragraph without a name
    prose = next(c for c in cands if c.kind == "prose" and c.text.startswith("Bridging targets"))
    assert "\n\n1. Set up the same" in render(to_units([prose, variation], [0.9, 0.8])).text


def test_a_variation_follows_the_exercise_it_builds_on(index: SearchIndex) -> None:
    cands, _ = gather(asking("procedure"), hip_article(index, "Banded Side Step"), index, AnswerParams())
    bridge = next(c for c in cands if c.kind == "steps" and c.lead_in == "To do a bridge:")
    variation = next(c for c in cands if c.kind == "steps" and c.hit.chunk.section[-1].endswith("Bridge Variation"))
    clamshell_hits = [h for h in hip_article(index, "5 Hip-Strengthening Exercises") if "clamshell" in h.chunk.text]
    cands, _ = gather(asking("procedure"), clamshell_hits, index, AnswerParams())
    clamshell = next(c for c in cands if c.kind == "steps" and c.lead_in == "To do a clamshell:")
    params = replace(AnswerParams(), keep_ratio=0.1, redundancy=1.01, steps_words=500, coverage=0.0)
    # The variation scored likelier, but "Set up the same as you would with the standard bridge" reads
    # only after the bridge's own steps.
    chosen = select(asking("procedure"), [variation, bridge], np.array([0.9, 0.8]), params)
    assert [id(c) for c in chosen] == [id(bridge), id(variation)]
    # A variation of an exercise not in the answer keeps its place: the likeliest unit opens.
    chosen = select(asking("procedure"), [variation, clamshell], np.array([0.9, 0.8]), params)
    assert [id(c) for c in chosen] == [id(variation), id(clamshell)]


def test_a_chosen_list_item_gives_way_to_its_whole_list_under_its_heading(index: SearchIndex) -> None:
    trail = hits_of(index, MUSCLES, "Trail Running")
    cands, _ = gather(asking("other"), trail, index, AnswerParams())
    item = next(c for c in cands if c.kind == "item" and c.text.startswith("More work from stabilisers"))
    whole = next(c for c in cands if c.kind == "list")
    assert whole.label == "Trail Running" and not whole.lead_in  # a list with no lead-in is named by its heading

    def chosen(list_probability: float, params: AnswerParams | None = None) -> list[Candidate]:
        probs = np.array([0.9 if c is item else list_probability if c is whole else 0.0 for c in cands])
        return select(asking("other"), cands, probs, params or AnswerParams())

    assert chosen(0.6) == [whole]
    text = render(to_units([whole], [0.6])).text
    assert text.split("\n")[:2] == ["Trail Running:", "- More work from stabilisers: glute med/min, obliques and "
                                    "deep foot muscles. [1]"]
    assert "- Increased eccentric quad demand. [1]" in text.split("\n")
    # the item stays alone when its list is too unlikely to be chosen on its own, or does not fit
    assert chosen(0.3) == [item]
    assert chosen(0.6, replace(AnswerParams(), max_words=whole.words - 1)) == [item]


def test_a_set_is_never_answered_by_a_procedures_steps(index: SearchIndex) -> None:
    hits = hip_article(index, "Quadruped Hip Extension")
    assert any(c.kind == "steps" for c in gather(asking("procedure"), hits, index, AnswerParams())[0])
    cands, _ = gather(asking_set("What does the quadruped hip extension target?"), hits, index, AnswerParams())
    assert cands and not any(c.kind == "steps" for c in cands)
    assert any(c.text.startswith("The quadruped hip extension is a well-regarded") and "targets the gluteus maximus"
               in c.text for c in cands)
