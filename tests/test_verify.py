from service.answering.citations import support, verify

PASSAGE = (
    "The gluteus maximus produces powerful hip extension. A 70kg runner should target 112–154 grams of protein daily."
)
_FIRST = PASSAGE.index(" A 70kg")
SPANS = [(0, _FIRST), (_FIRST + 1, len(PASSAGE))]


def test_supported_sentence_is_kept_with_a_verbatim_quote() -> None:
    kept = verify("The gluteus maximus produces powerful hip extension [1].", [(PASSAGE, SPANS)])
    assert len(kept) == 1
    assert PASSAGE[kept[0].start : kept[0].end] == "The gluteus maximus produces powerful hip extension."


def test_a_number_not_in_the_passage_sinks_the_sentence() -> None:
    assert support("A 70kg runner should target 200 grams of protein daily.", PASSAGE) == 0.0
    assert verify("A 70kg runner should target 200 grams of protein daily. [1]", [(PASSAGE, SPANS)]) == []


def test_uncited_or_out_of_range_citations_are_dropped() -> None:
    assert verify("The gluteus maximus produces powerful hip extension.", [(PASSAGE, SPANS)]) == []
    assert verify("The gluteus maximus produces powerful hip extension. [7]", [(PASSAGE, SPANS)]) == []
