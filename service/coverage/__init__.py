"""The content-coverage report (``stride coverage``, ``GET /coverage``): what the articles say about
each lexicon topic, which questions they leave unanswered, and where two articles repeat each other.

``model`` holds the pure computations, ``build`` gathers inputs from an Engine (its index snapshot),
the query log and the eval questions the CLI passes in,
``render`` writes the HTML, JSON and CSV outputs. The gaps (what to write next, and what the content team
has done about it) are put together by ``gap_build``.
"""

from service.coverage.build import (
    EvalQuestion,
    QuestionsFileInvalid,
    build_coverage,
    read_questions_file,
    write_coverage,
)

__all__ = ["EvalQuestion", "QuestionsFileInvalid", "build_coverage", "read_questions_file", "write_coverage"]
