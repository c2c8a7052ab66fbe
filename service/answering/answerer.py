"""One ``Answerer`` protocol, two implementations: extractive (here) and LLM (``llm.py``). An answerer
turns retrieved hits into answer units, streamed: each unit as soon as it is ready, then the ``Draft``
(all of them, the mode, the LLM info). The engine adds the referral and renders them as they come."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal, Protocol

import numpy as np

from service.answering.citations import Unit
from service.answering.compose import AnswerParams, compose
from service.answering.provenance import LLMInfo
from service.answering.query import Query
from service.answering.retrieval import Hit, SearchIndex
from service.answering.selection import SelectionModel


@dataclass(frozen=True)
class Draft:
    units: list[Unit]
    mode: Literal["extractive", "llm"]
    llm: LLMInfo | None = None  # set whenever an LLM was asked, even if its answer was dropped


class Answerer(Protocol):
    @property
    def params(self) -> AnswerParams: ...

    def stream(self, query: Query, qvec: np.ndarray, hits: list[Hit], index: SearchIndex) -> Iterator[Unit | Draft]:
        """Units as they are ready, then the Draft (last)."""
        ...


def drain(items: Iterator[Unit | Draft]) -> Draft:
    """The Draft at the end of a stream (for callers that want the whole answer at once)."""
    for item in items:
        if isinstance(item, Draft):
            return item
    raise RuntimeError("an answerer's stream ended without its Draft")


class ExtractiveAnswerer:
    """Verbatim article units, chosen by ``compose`` with the learned selection weights."""

    def __init__(self, params: AnswerParams | None = None, model: SelectionModel | None = None) -> None:
        self._params = params or AnswerParams()
        self.model = model or SelectionModel.load()

    @property
    def params(self) -> AnswerParams:
        return self._params

    def stream(self, query: Query, qvec: np.ndarray, hits: list[Hit], index: SearchIndex) -> Iterator[Unit | Draft]:
        # Composing chooses the units together (redundancy, order), so they are ready at once: sent in order.
        units = compose(query, qvec, hits, index, self._params, self.model)
        yield from units
        yield Draft(units, "extractive")
