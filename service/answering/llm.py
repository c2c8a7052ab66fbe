"""Optional LLM answers through any OpenAI-compatible chat endpoint (vLLM, llama.cpp, Ollama, hosted).

The model writes from numbered passages and is streamed: each sentence is verified against the passage
it cites (``citations.verify_stream``) as soon as it is finished, and sent on if supported, dropped if
not, so the first sentence arrives long before the last token. A failure, a timeout or "not covered"
before any sentence was sent, or an answer with no supported sentence, falls back to the extractive
answerer, and the draft says why. (After a sentence was sent, a failure ends the answer there.)
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import numpy as np

from ingest.settings import Settings
from service.answering.answerer import Answerer, Draft
from service.answering.citations import Unit, verify_stream
from service.answering.compose import AnswerParams
from service.answering.prompts import Prompt, load_prompt
from service.answering.provenance import LLMInfo
from service.answering.query import Query
from service.answering.retrieval import Hit, SearchIndex

log = logging.getLogger(__name__)
NOT_COVERED = "NOT COVERED"


class LLMAnswerer:
    def __init__(self, settings: Settings, fallback: Answerer, prompt: Prompt | None = None, passages: int = 3) -> None:
        from langchain_openai import ChatOpenAI  # only LLM mode pays for this import

        self.fallback = fallback
        self.prompt = prompt or load_prompt("answer")
        self.passages = passages
        self.model = ChatOpenAI(
            base_url=settings.llm_base_url,
            model=settings.llm_model or "default",
            api_key=settings.llm_api_key or "not-needed",  # local servers ignore it; the client requires one
            timeout=settings.llm_timeout_s,
            max_retries=0,
            temperature=0,
            streaming=True,
        )

    @property
    def params(self) -> AnswerParams:
        return self.fallback.params

    def stream(self, query: Query, qvec: np.ndarray, hits: list[Hit], index: SearchIndex) -> Iterator[Unit | Draft]:
        info = LLMInfo(prompt=self.prompt.name, prompt_sha256=self.prompt.sha256)
        chosen = [h for h in hits if not h.chunk.is_reference][: self.passages]
        if not chosen:
            yield from self._fall_back(query, qvec, hits, index, info)
            return
        # Planted instructions are blanked before the model sees a passage, and so can't be verified either.
        texts = [index.without_planted(h.chunk) for h in chosen]
        numbered = "\n\n".join(
            f"[{i}] ({h.chunk.title} › {h.chunk.section_label})\n{t}"
            for i, (h, t) in enumerate(zip(chosen, texts, strict=True), 1)
        )
        message = self.prompt.render(question=query.message, passages=numbered)
        passages = [(t, [sp for sp in h.chunk.sentences if not index.is_planted(h.chunk, *sp)])
                    for h, t in zip(chosen, texts, strict=True)]
        units: list[Unit] = []
        try:
            tokens = (str(part.content) for part in self.model.stream(message))
            for k in verify_stream(tokens, passages, stop=lambda text: NOT_COVERED in text):
                unit = Unit(k.text, chosen[k.passage - 1], k.start, k.end, score=1.0, rank=k.passage - 1)
                units.append(unit)
                yield unit
        except Exception as err:  # network errors, timeouts, bad responses: all mean "use the extractive answer"
            error = f"{type(err).__name__}: {err}"[:300]
            info = info.model_copy(update={"error": error})
            if units:  # sentences already sent stay: the answer ends there
                log.warning("LLM endpoint failed mid-answer, ending it there: %s", error)
                yield Draft(units, "llm", info)
                return
            log.warning("LLM endpoint failed, answering extractively: %s", error)
        if not units:
            yield from self._fall_back(query, qvec, hits, index, info)
            return
        yield Draft(units, "llm", info)

    def _fall_back(self, query: Query, qvec: np.ndarray, hits: list[Hit], index: SearchIndex,
                   info: LLMInfo) -> Iterator[Unit | Draft]:
        for item in self.fallback.stream(query, qvec, hits, index):
            yield Draft(item.units, item.mode, info) if isinstance(item, Draft) else item
