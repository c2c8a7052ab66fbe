"""Question analysis: the answer type and the focus come from the wording alone."""

from __future__ import annotations

import pytest

from service.answering.question import answer_type, focus_phrases, focus_terms, subject_word


@pytest.mark.parametrize(("question", "kind"), [
    ("What muscles does running work?", "set"),
    ("Which exercises strengthen the hips?", "set"),
    ("How do I do a clamshell?", "procedure"),
    ("how to do a single leg bridge", "procedure"),
    ("What is the interference effect?", "definition"),
    ("whats a hip hinge", "definition"),
    ("How much protein do I need each day?", "quantity"),
    ("how often?", "quantity"),
    ("Should I lift before or after running?", "comparison"),
    ("my calves hurt after runs why", "reason"),
    ("How do I make it harder?", "variation"),
    ("Where should I put the band to make it tougher?", "variation"),
    ("Squats feel too easy. How can I make them harder?", "variation"),
    ("is there a tougher version of the bridge", "variation"),
    ("how do i make my workouts harder without weights", "variation"),
    ("make squats harder", "variation"),
    # harder, but no exercise to be made so
    ("Which muscles work harder on hills?", "set"),
    ("do hills make my hip flexors work harder", "yes_no"),
    ("Why do hills make running harder?", "reason"),
    ("does running make my calves tougher", "yes_no"),
    ("my runs are getting harder every week", "other"),
    ("lunges or squats, which one is harder", "comparison"),
    ("Does running build muscle?", "yes_no"),
    ("What do the glutes do when running?", "other"),
    # a plural of things to list asks for the set when asked which or what they are
    ("What are the key rules for building muscle as a runner?", "set"),
    ("what tips do you have for stronger calves", "set"),
    ("Which drills help with running form?", "set"),
    ("Is it good to do drills before an easy run?", "yes_no"),
    ("Are hill sprints good drills for speed?", "yes_no"),
    ("Is running good for my knees given the signs of arthritis", "yes_no"),
    # "good" and "best" ask for a set, unless the question asks yes or no
    ("best exercises for weak hips", "set"),
    ("what are good stretches for tight calves", "set"),
    ("Are lunges any good for my thigh muscles?", "yes_no"),
    ("is the squat the best of the leg exercises", "yes_no"),
])
def test_answer_type_follows_the_wording(question: str, kind: str) -> None:
    assert answer_type(question) == kind


def test_focus_drops_the_answer_type_cues_and_chat_fillers() -> None:
    assert focus_terms("What are the best glute exercises for runners?") == ["glute", "exercises", "runners"]
    assert focus_terms("does running actually build muscle") == ["running", "build", "muscle"]
    assert focus_terms("How do I make it harder?") == []


def test_focus_phrases_are_adjacent_focus_words_as_asked() -> None:
    assert focus_phrases("How do I prevent shin splints?") == [("prevent", "shin"), ("shin", "splints")]
    assert focus_phrases("I weigh 70 kg") == []  # a number between them breaks the phrase


@pytest.mark.parametrize(("question", "subject"), [
    ("Does creatine help runners build muscle?", "creatine"),
    ("Do compression socks help my calves recover?", "compression"),
    ("Is the interference effect real?", "interference"),  # past its determiner
    ("does running tone ur hamstrings or nah", "running"),
    ("Can I lift straight after a hard run?", None),  # a pronoun is no subject to look up
    ("How much caffeine should I take?", "caffeine"),  # what a quantity is of
    ("How many hours of sleep do runners need?", "sleep"),  # past its measure
    ("How many hours should separate the sessions?", None),  # a measure alone names no subject
    ("What is the best sleep position?", None),  # neither yes/no nor how much
    ("Is it bad to lift before a long run?", None),
])
def test_subject_word_is_what_a_yes_no_or_how_much_question_asks_about(question: str, subject: str | None) -> None:
    assert subject_word(question) == subject
