"""Query analysis (follow-ups, topics, expansions, coverage) and the shared text helpers."""

from __future__ import annotations

import pytest

from ingest.lexicon import Concept, Lexicon
from ingest.terms import defined_abbreviations
from service.answering.query import Turn, analyse, is_follow_up, topic_of
from service.answering.text import content_words, correct_spelling, normalise

GLUTES = Concept("glutes", "Glutes", "muscle_group", ("glutes", "gluteus maximus", "glute"))
HIP_FLEXORS = Concept("hip_flexors", "Hip flexors", "muscle_group", ("hip flexors", "iliopsoas"))
PROTEIN = Concept("protein", "Protein", "theme", ("protein", "protein intake"), expand=False)
LEXICON = Lexicon([GLUTES, HIP_FLEXORS, PROTEIN])
VOCAB = LEXICON.vocabulary() | {"running", "runners", "sprinting", "runs", "sleep", "marathon"}
HISTORY = [Turn("user", "What do the glutes do when running?"), Turn("assistant", "They extend the hip.")]


@pytest.mark.parametrize(("message", "history", "expected"), [
    ("And for 70 kg?", [], False),  # nothing to lean on
    ("And for 70 kg?", [Turn("assistant", "Hello.")], False),  # only an assistant turn
    ("And for 70 kg?", HISTORY, True),  # continuation
    ("Calf raises?", HISTORY, True),  # two content words
    ("How often should I train them each week?", HISTORY, True),  # pronoun, three content words
    ("Does it help hamstring strength during hill sprints?", HISTORY, False),  # pronoun, but six content words
    ("Which exercises strengthen the hip flexors for sprinting?", HISTORY, False),  # a new question
])
def test_is_follow_up_rules(message: str, history: list[Turn], expected: bool) -> None:
    assert is_follow_up(message, history) is expected


def test_topic_of_returns_the_lexicon_terms_in_order_without_repeats() -> None:
    assert topic_of("Do the hip flexors and glutes work with the glutes?", LEXICON, VOCAB) == "hip flexors glutes"


def test_topic_of_repairs_spelling_before_looking_up_terms() -> None:
    assert topic_of("What do the glutess do?", LEXICON, VOCAB) == "glutes"


def test_topic_of_falls_back_to_content_words() -> None:
    assert topic_of("Should I sleep before a marathon?", LEXICON, VOCAB) == "sleep marathon"


def test_analyse_joins_a_follow_up_to_the_earlier_questions_topic() -> None:
    q = analyse("And for sprinting?", HISTORY, LEXICON, VOCAB)
    assert (q.text, q.follow_up_of) == ("and for sprinting glutes", "What do the glutes do when running?")
    assert q.concepts == [GLUTES]
    assert q.expansions == ["gluteus maximus", "glute"]  # "glutes" is already in the text
    assert (q.content, q.coverage, q.corrections) == (["sprinting", "glutes"], 1.0, {})
    assert q.keyword_text == "and for sprinting glutes gluteus maximus glute"


def test_chat_spellings_of_function_words_are_not_topic_words() -> None:
    assert content_words("what do my obliques do wen im running") == ["obliques", "running"]


def test_a_chain_of_follow_ups_keeps_the_first_questions_subject() -> None:
    """"How do I do it?" has no subject of its own; the question after it still needs the glutes."""
    chain = [*HISTORY, Turn("user", "How do I do it?"), Turn("assistant", "Lie on your back.")]
    q = analyse("anything to watch out for?", chain, LEXICON, VOCAB)
    assert q.text == "anything to watch out for glutes"
    assert q.follow_up_of == "How do I do it?"  # provenance names the turn as asked
    assert q.answer_type == "procedure"  # from the turn it follows, which asked how


def test_analyse_coverage_is_the_share_of_known_content_words() -> None:
    q = analyse("Do hip flexors tighten from sitting?", [], LEXICON, VOCAB)
    assert (q.follow_up_of, q.coverage, q.concepts, q.expansions) == (None, 0.5, [HIP_FLEXORS], ["iliopsoas"])


def test_analyse_does_not_expand_concepts_marked_expand_false() -> None:
    q = analyse("Is protein important after runs?", [], LEXICON, VOCAB)
    assert (q.concepts, q.expansions) == ([PROTEIN], [])


def test_analyse_records_spelling_corrections_and_retrieves_with_the_repair() -> None:
    q = analyse("What do the glutess do?", [], LEXICON, VOCAB)
    assert (q.text, q.corrections, q.coverage) == ("what do the glutes do", {"glutess": "glutes"}, 1.0)


def test_analyse_coverage_without_content_words_is_zero_unless_a_follow_up() -> None:
    assert analyse("What is it?", [], LEXICON, VOCAB).coverage == 0.0
    assert analyse("And that?", HISTORY, LEXICON, VOCAB).coverage == 1.0


def test_normalise_lowercases_straightens_apostrophes_and_splits_units() -> None:
    assert normalise("A 70kg Runner’s 5KM") == "a 70 kg runner's 5 km"


def test_content_words_drop_stopwords_and_single_letters_but_keep_numbers() -> None:
    assert content_words("What do the glutes do in 3 x 10 squats at 5km?") == ["glutes", "3", "10", "squats", "5", "km"]


def test_correct_spelling_breaks_ties_the_same_way_whatever_the_set_order() -> None:
    forward = {"glute", "glutes", "gluten", "gluteal"}
    backward = {"gluteal", "gluten", "glutes", "glute"}
    expected = (["glute"], {"glutez": "glute"})  # "glute", "glutes" and "gluten" are all one edit away
    assert correct_spelling(["glutez"], forward) == correct_spelling(["glutez"], backward) == expected
    assert correct_spelling(["glutez"], {"glutes", "glute"}) == expected


def test_correct_spelling_repairs_long_words_within_the_edit_limit() -> None:
    vocab = {"hamstring"}
    assert correct_spelling(["hamstrng", "hamstrngs", "hamstrg"], vocab) == (
        ["hamstring", "hamstring", "hamstrg"],  # one edit at 8 letters, two at 9; two at 7 is too many
        {"hamstrng": "hamstring", "hamstrngs": "hamstring"},
    )


def test_correct_spelling_leaves_short_words_alone_but_repairs_near_stopwords() -> None:
    assert correct_spelling(["hour", "shoes", "wich", "70"], {"shoe"}) == (
        ["hour", "shoes", "which", "70"],
        {"wich": "which"},
    )


def test_the_articles_define_their_abbreviations(real_articles) -> None:
    # Golden on the shipped articles: both parenthesised abbreviations, with what they stand for.
    found = defined_abbreviations(a.text for a in real_articles.values())
    assert found == {"tfl": "tensor fasciae latae", "si": "sacroiliac"}


@pytest.mark.parametrize(("text", "expected"), [
    ("delayed onset muscle soreness (DOMS) peaks", {"doms": "delayed onset muscle soreness"}),
    ("high-intensity interval training (HIIT) sessions", {"hiit": "high-intensity interval training"}),
    ("the anterior cruciate ligament (ACL) tears", {"acl": "anterior cruciate ligament"}),
    # capitals in brackets that don't abbreviate the words before them
    ("I tried it on my own (OWN)", {}),  # the "long form" holds the short form itself
    ("adductors and abductors (AA)", {}),  # it would open on a function word
    ("a review in the British Journal (BJSM)", {}),
    ("see the results (T1)", {}),
])
def test_an_abbreviation_is_only_what_the_words_before_it_spell(text: str, expected: dict[str, str]) -> None:
    assert defined_abbreviations([text]) == expected


def test_analyse_spells_out_an_abbreviation_for_retrieval_but_keeps_the_question() -> None:
    q = analyse("What does the TFL do?", [], LEXICON, VOCAB | {"tfl"}, {"tfl": "tensor fasciae latae"})
    assert q.text == "what does the tfl tensor fasciae latae do"
    assert q.focus == analyse("What does the TFL do?", [], LEXICON, VOCAB | {"tfl"}).focus
    # typed in lower case, as chat is
    assert analyse("what does the tfl do", [], LEXICON, VOCAB | {"tfl"}, {"tfl": "tensor fasciae latae"}).text \
        == "what does the tfl tensor fasciae latae do"


def test_an_abbreviation_that_is_also_a_common_word_counts_only_in_capitals() -> None:
    defined = {"who": "world health organization", "si": "sacroiliac"}
    assert analyse("who should do squats", [], LEXICON, VOCAB, defined).text == "who should do squats"
    assert analyse("What does the WHO say?", [], LEXICON, VOCAB, defined).text == \
        "what does the who world health organization say"
    assert analyse("my SI joint hurts", [], LEXICON, VOCAB, defined).text == "my si sacroiliac joint hurts"
