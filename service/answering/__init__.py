"""Answering: from a question to a cited answer or a plain decline.

``engine`` is the facade; ``query`` resolves the question and ``question`` finds its answer type and
focus; ``retrieval`` + ``fusion`` find candidate chunks and ``rerank`` orders them; ``units`` cuts them
into quotable units, ``selection`` scores those and ``compose`` (extractive) or ``llm`` drafts the answer
through one ``answerer`` protocol; ``citations`` renders and verifies it; ``abstain`` decides when to
decline and ``guard`` refuses prompt injection; ``provenance`` records how every answer was made.
"""
