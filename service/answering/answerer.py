"""One ``Answerer`` protocol, two implementations: extractive (here) and LLM (``llm.py``). An answerer
turns retrieved hits into answer units; the engine adds the referral and renders them once."""

from __future__ import annotations

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

    def draft(self, query: Query, qvec: np.ndarray, hits: list[Hit], index: SearchIndex) -> Draft: ...


class ExtractiveAnswerer:
    """Verbatim article units, chosen by ``compose`` with the learned selection weights."""

    def __init__(self, params: AnswerParams | None = None, model: SelectionModel | None = None) -> None:
        self._params = params or AnswerParams()
        self.model = model or SelectionModel.load()

    @property
    def params(self) -> AnswerParams:
        return self._params

    def draft(self, query: Query, qvec: np.ndarray, hits: list[Hit], index: SearchIndex) -> Draft:
        return Draft(compose(query, qvec, hits, index, self._params, self.model), "extractive")
