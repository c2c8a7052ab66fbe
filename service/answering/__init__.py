"""Answering: from a question to a cited answer or a plain decline.

``engine`` is the facade; ``query`` resolves the question, ``retrieval`` + ``fusion`` find candidates,
``rerank`` orders them, ``compose`` (extractive) or ``llm`` drafts the answer through one ``answerer``
protocol, ``citations`` renders and verifies it, ``abstain`` decides when to decline, and
``provenance`` records how every answer was made.
"""
