"""The coverage page of a running server, kept current cheaply.

The page depends on the index version and the query log. The index half is built once per version,
every question's vector is kept (a new view embeds only questions asked since the last one), and the
finished page is reused until the index version or the log's watermark (row count, newest row) moves."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from service.coverage.build import EvalQuestion, build_gaps, build_index_view, generated_at
from service.coverage.render import render_html

if TYPE_CHECKING:
    from service.answering.engine import Engine
    from service.feedback.store import FeedbackStore


class LiveCoverage:
    def __init__(self, eval_questions: Sequence[EvalQuestion] = (), max_vectors: int = 200_000) -> None:
        self._eval_questions = eval_questions
        self._max_vectors = max_vectors
        self._lock = threading.Lock()  # one build at a time; viewers arriving meanwhile get its page
        self._index: tuple[str, dict[str, Any]] | None = None
        self._page: tuple[tuple[str, Any], str] | None = None
        self._vectors: OrderedDict[tuple[str, str], np.ndarray] = OrderedDict()

    def html(self, engine: Engine, store: FeedbackStore | None) -> str:
        version = engine.snapshot.version
        with self._lock:
            mark = store.query_log_mark() if store is not None else None
            if self._page is not None and self._page[0] == (version, mark):
                return self._page[1]
            if self._index is None or self._index[0] != version:
                self._index = (version, build_index_view(engine, self._eval_questions))
            rows = list(store.iter_queries()) if store is not None else None
            gaps = build_gaps(engine, rows, encode=lambda texts: self._encode(engine, texts))
            page = render_html({"generated_at": generated_at(), **self._index[1], "gaps": gaps})
            self._page = ((version, mark), page)
            return page

    def _encode(self, engine: Engine, texts: list[str]) -> np.ndarray:
        model = engine.snapshot.model
        missing = list(dict.fromkeys(t for t in texts if (model, t) not in self._vectors))
        for text, vec in zip(missing, engine.encode_many(missing), strict=True):
            self._vectors[(model, text)] = vec
        out = []
        for t in texts:
            self._vectors.move_to_end((model, t))
            out.append(self._vectors[(model, t)])
        while len(self._vectors) > self._max_vectors:
            self._vectors.popitem(last=False)
        return np.stack(out) if out else np.zeros((0, 1), dtype=np.float32)
