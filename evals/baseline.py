"""The textbook LangChain RAG recipe, run through the same harness as Stride's anchor.

RecursiveCharacterTextSplitter(1000, 200) over the raw article files, the same embedder, Chroma
top-k, the top passage as the "answer"; it never abstains and ignores conversation history.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from evals.scoring import BULLET
from ingest.embedding import SentenceEmbeddings
from service.answering.engine import Engine
from service.answering.query import Turn


@dataclass
class BaselineResult:
    answer: str
    passages: list[tuple[str, str, int, int]]  # (doc id, article id, start, end) in raw file text
    latency_ms: float


class LangChainBaseline:
    def __init__(self, raw: dict[str, str], embeddings: SentenceEmbeddings) -> None:
        """``raw``: article id -> the article file's text, as ``ingest.corpus.raw_texts`` reads it."""
        import chromadb
        from chromadb.config import Settings as ChromaSettings
        from langchain_chroma import Chroma
        from langchain_core.documents import Document
        from langchain_text_splitters import RecursiveCharacterTextSplitter

        splitter = RecursiveCharacterTextSplitter(chunk_size=1000, chunk_overlap=200, add_start_index=True)
        self.raw = raw
        self.texts = raw  # what passage offsets point into
        docs = splitter.split_documents(
            [Document(page_content=t, metadata={"article_id": aid}) for aid, t in self.raw.items()]
        )
        client = chromadb.EphemeralClient(settings=ChromaSettings(anonymized_telemetry=False))
        self.store = Chroma(
            collection_name=f"baseline_{id(self)}",
            embedding_function=embeddings,
            client=client,
            collection_configuration={"hnsw": {"space": "cosine"}},
        )
        ids = [f"b{i}" for i in range(len(docs))]
        for i, d in zip(ids, docs, strict=True):
            d.metadata["doc_id"] = i
        self.store.add_documents(docs, ids=ids)
        self.num_chunks = len(docs)

    def ask(self, question: str, history: list[Turn] | None = None, k: int = 10) -> BaselineResult:
        """The top passage for ``question`` alone: the recipe has no notion of a conversation."""
        started = time.perf_counter()
        found: list[Any] = self.store.similarity_search(question, k=k)
        latency = (time.perf_counter() - started) * 1000
        passages = [
            (d.metadata["doc_id"], d.metadata["article_id"], d.metadata["start_index"],
             d.metadata["start_index"] + len(d.page_content))
            for d in found
        ]
        top = found[0] if found else None
        return BaselineResult(
            answer=top.page_content if top else "",
            passages=passages,
            latency_ms=latency,
        )


class HybridTopChunkBaseline:
    """Stride's own hybrid retrieval (same query resolution, fusion and reranking), with its top chunk
    cut to Stride's word budget as the answer: what answering adds beyond retrieval."""

    name = "Stride's hybrid retrieval, top chunk cut to the same word budget"

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.texts = {aid: a.text for aid, a in engine.articles().items()}
        self.words = engine.answering.max_words

    def ask(self, question: str, history: list[Turn] | None = None, k: int = 10) -> BaselineResult:
        started = time.perf_counter()
        _, _, hits = self.engine.retrieve(question, history or [], k, answerable_only=True)
        latency = (time.perf_counter() - started) * 1000
        passages = [(h.chunk_id, h.chunk.article_id, h.chunk.start, h.chunk.end) for h in hits]
        answer = first_words(hits[0].chunk.text, self.words) if hits else ""
        return BaselineResult(answer=answer, passages=passages, latency_ms=latency)


def first_words(text: str, n: int) -> str:
    """``text`` up to its ``n``-th word, its lines kept; a list's bullet is layout, not a word (as the
    eval counts Stride's answers)."""
    lines: list[str] = []
    for line in text.splitlines():
        bullet = BULLET.match(line)
        mark, body = (bullet.group(0), line[bullet.end() :]) if bullet else ("", line)
        taken = body.split()[:n]
        if taken:
            lines.append(mark + " ".join(taken))
        n -= len(taken)
        if n <= 0:
            break
    return "\n".join(lines)
