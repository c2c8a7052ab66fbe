"""Optional LLM answers through any OpenAI-compatible chat endpoint (vLLM, llama.cpp, Ollama, hosted).

The model writes from numbered passages; every sentence is then verified against the passage it
cites (``citations.verify``) and unsupported ones are dropped. Any failure, timeout, "not covered"
or fully unsupported answer falls back to the extractive answerer, and the draft says why.
"""

from __future__ import annotations

import logging

import numpy as np

from ingest.settings import Settings
from service.answering.answerer import Answerer, Draft
from service.answering.citations import Unit, verify
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

    def draft(self, query: Query, qvec: np.ndarray, hits: list[Hit], index: SearchIndex) -> Draft:
        info = LLMInfo(prompt=self.prompt.name, prompt_sha256=self.prompt.sha256)
        chosen = [h for h in hits if not h.chunk.is_reference][: self.passages]
        if not chosen:
            return self._fall_back(query, qvec, hits, index, info)
        # Planted instructions are blanked before the model sees a passage, and so can't be verified either.
        texts = [index.without_planted(h.chunk) for h in chosen]
        numbered = "\n\n".join(
            f"[{i}] ({h.chunk.title} › {h.chunk.section_label})\n{t}"
            for i, (h, t) in enumerate(zip(chosen, texts, strict=True), 1)
        )
        message = self.prompt.render(question=query.message, passages=numbered)
        try:
            text = "".join(str(part.content) for part in self.model.stream(message))
        except Exception as err:  # network errors, timeouts, bad responses: all mean "use the extractive answer"
            error = f"{type(err).__name__}: {err}"[:300]
            log.warning("LLM endpoint failed, answering extractively: %s", error)
            return self._fall_back(query, qvec, hits, index, info.model_copy(update={"error": error}))
        if NOT_COVERED in text:
            return self._fall_back(query, qvec, hits, index, info)
        kept = verify(text, [(t, [sp for sp in h.chunk.sentences if not index.is_planted(h.chunk, *sp)])
                             for h, t in zip(chosen, texts, strict=True)])
        if not kept:
            return self._fall_back(query, qvec, hits, index, info)
        units = [Unit(k.text, chosen[k.passage - 1], k.start, k.end, score=1.0, rank=k.passage - 1) for k in kept]
        return Draft(units, "llm", info)

    def _fall_back(self, query: Query, qvec: np.ndarray, hits: list[Hit], index: SearchIndex, info: LLMInfo) -> Draft:
        draft = self.fallback.draft(query, qvec, hits, index)
        return Draft(draft.units, draft.mode, info)
