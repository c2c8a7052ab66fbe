"""Optional LLM answers through any OpenAI-compatible chat endpoint (vLLM, llama.cpp, Ollama, hosted).

The model writes from numbered passages; every sentence is then verified against the passage it
cites (service.verify) and unsupported ones are dropped. Any failure or timeout returns None, and
the engine keeps its extractive answer.
"""

from __future__ import annotations

import logging
from typing import Any

from ingest.settings import Settings
from service.answer import Composed, Unit, render
from service.prompts import Prompt, load_prompt
from service.query import Query
from service.retrieval import Hit
from service.verify import verify

log = logging.getLogger(__name__)
NOT_COVERED = "NOT COVERED"


class LLMAnswerer:
    def __init__(self, settings: Settings, prompt: Prompt | None = None, passages: int = 3) -> None:
        from langchain_openai import ChatOpenAI

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
        self.last_error: str | None = None

    def provenance(self) -> dict[str, Any]:
        return {"prompt": self.prompt.name, "prompt_sha256": self.prompt.sha256, "last_error": self.last_error}

    def answer(self, query: Query, hits: list[Hit], extractive: Composed) -> Composed | None:
        chosen = [h for h in hits if not h.chunk.is_reference][: self.passages]
        if not chosen:
            return None
        numbered = "\n\n".join(f"[{i}] ({h.chunk.title} › {h.chunk.section_label})\n{h.chunk.text}" for i, h in enumerate(chosen, 1))
        message = self.prompt.render(question=query.message, passages=numbered)
        try:
            text = "".join(str(part.content) for part in self.model.stream(message))
        except Exception as err:  # network errors, timeouts, bad responses: all mean "use the extractive answer"
            self.last_error = f"{type(err).__name__}: {err}"[:300]
            log.warning("LLM endpoint failed, answering extractively: %s", self.last_error)
            return None
        self.last_error = None
        if NOT_COVERED in text:
            return None
        kept = verify(text, [(h.chunk.text, list(h.chunk.sentences)) for h in chosen])
        if not kept:
            return None
        units = [Unit(k.text, chosen[k.passage - 1], k.start, k.end, score=1.0, rank=k.passage - 1) for k in kept]
        return render(units)
