"""The coverage page and gaps report of a running server, kept current cheaply.

Both depend on the index version, the query log and the gap marks. The index half is built once per
version; every question's vector is kept, and so is what the index made of it (``Assessment``, per
version), so a new view embeds and asks only questions it has not seen. The finished report and page
are reused until the index version, the log's watermark (row count, newest row), the marks or the day
(trends count days) change."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from service.coverage.asks import question_key
from service.coverage.build import EvalQuestion, build_index_view
from service.coverage.classify import Assessment
from service.coverage.gap_build import Assessor, build_gaps, chat_assessor
from service.coverage.gap_report import GapReport
from service.coverage.marks import marks_revision
from service.coverage.render import render_html

if TYPE_CHECKING:
    from service.answering.engine import Engine
    from service.feedback.store import FeedbackStore


class LiveCoverage:
    def __init__(self, eval_questions: Sequence[EvalQuestion] = (), max_vectors: int = 200_000) -> None:
        self._eval_questions = eval_questions
        self._max_vectors = max_vectors
        self._lock = threading.Lock()  # one build at a time; viewers arriving meanwhile get its result
        self._index: tuple[str, dict[str, Any]] | None = None
        self._gaps: tuple[Hashable, GapReport] | None = None
        self._page: tuple[Hashable, str] | None = None
        self._vectors: OrderedDict[tuple[str, str], np.ndarray] = OrderedDict()
        self._assessed: OrderedDict[tuple[str, str], Assessment] = OrderedDict()

    def gaps(self, engine: Engine, store: FeedbackStore | None, data_dir: Path | None = None) -> GapReport:
        """The gaps report; ``data_dir`` holds the marks and cluster ids (none without it)."""
        with self._lock:
            return self._gaps_report(engine, store, data_dir)[1]

    def html(self, engine: Engine, store: FeedbackStore | None, data_dir: Path | None = None) -> str:
        with self._lock:
            key, gaps = self._gaps_report(engine, store, data_dir)
            if self._page is not None and self._page[0] == key:
                return self._page[1]
            version = engine.snapshot.version
            if self._index is None or self._index[0] != version:
                self._index = (version, build_index_view(engine, self._eval_questions))
            page = render_html({"generated_at": gaps.generated_at, **self._index[1],
                                "gaps": gaps.model_dump(mode="json")})
            self._page = (key, page)
            return page

    def _gaps_report(self, engine: Engine, store: FeedbackStore | None,
                     data_dir: Path | None) -> tuple[Hashable, GapReport]:
        now = datetime.now(UTC)
        mark = store.query_log_mark() if store is not None else None
        key = (engine.snapshot.version, mark, data_dir, marks_revision(data_dir) if data_dir else None, now.date())
        if self._gaps is not None and self._gaps[0] == key:
            return self._gaps
        rows = list(store.iter_queries()) if store is not None else None
        report = build_gaps(engine, rows, encode=lambda texts: self._encode(engine, texts),
                            assessor=self._assessor(engine), data_dir=data_dir, now=now)
        self._gaps = (key, report)
        return self._gaps

    def _assessor(self, engine: Engine) -> Assessor:
        ask = chat_assessor(engine)
        version = engine.snapshot.version

        def assessed(question: str) -> Assessment:
            key = (version, question_key(question))
            found = self._assessed.get(key)
            if found is None:
                found = self._assessed[key] = ask(question)
            self._assessed.move_to_end(key)
            while len(self._assessed) > self._max_vectors:
                self._assessed.popitem(last=False)
            return found

        return assessed

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
