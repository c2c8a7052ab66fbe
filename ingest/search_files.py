"""The keyword side of a version, built at ingest so a server loads it instead of rebuilding it.

Under ``<version>/search/``:
  bm25/           bm25s index over every chunk's keyword terms (rows in ``chunk_ids.json`` order), memory-mapped
  chunk_ids.json  the chunk id of each BM25 row
  postings.npz    what the BM25 scores are computed from: each row's (term, count) pairs and length, and the terms
  terms.json      ``mentions``: how many answerable sentences name each stem and stem pair;
                  ``words``: every word of the indexed text (spelling repair looks words up in it), with the
                  number of articles using it

Start-up then costs reading these files, not tokenising and stemming every chunk (which grows with
the corpus: 2.2 s for 10k chunks here). An ingest that changed a few articles updates them rather
than rebuilding them: the term counts are sums over articles (an article's own are in its shard,
``ingest/shards.py``), so the changed articles' old counts are subtracted and their new ones added,
and only the new chunks are tokenised; the BM25 scores are then recomputed from the kept postings
in a few vectorised passes (BM25's idf and length norm are corpus-wide, so every score can move).
The scores are bm25s's own ("lucene" BM25, its default parameters), computed the same way, so they
equal ``bm25s.BM25().index(tokens)``'s bit for bit (tests/test_incremental_ingest.py checks it).
"""

from __future__ import annotations

import json
import math
import shutil
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ingest.models import Chunk
from ingest.terms import keyword_tokens, sentence_mentions, words

SEARCH_DIR = "search"


@dataclass(frozen=True)
class SearchFiles:
    """What the service's keyword search and declining need from the whole corpus."""

    bm25: Any  # bm25s.BM25
    chunk_ids: list[str]  # BM25 row -> chunk id
    mentions: Counter[str]
    vocabulary: frozenset[str]


@dataclass(frozen=True)
class ArticleTerms:
    """One article's share of the corpus-wide term counts (they are sums over articles)."""

    mentions: Counter[str]  # answerable sentences naming each stem and stem pair
    words: frozenset[str]  # the words of its chunks' indexed text

    @classmethod
    def of(cls, chunks: Sequence[Chunk], indexed_texts: Sequence[str]) -> ArticleTerms:
        mentions = sentence_mentions(c.text[s:e] for c in chunks if not c.is_reference for s, e in c.sentences)
        return cls(mentions, frozenset(w for t in indexed_texts for w in words(t)))

    def as_json(self) -> dict[str, Any]:
        return {"mentions": dict(self.mentions), "words": sorted(self.words)}

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> ArticleTerms:
        return cls(Counter(raw["mentions"]), frozenset(raw["words"]))


@dataclass
class Postings:
    """Each BM25 row's term counts: row ``rows[i]`` has term ``vocab[terms[i]]`` ``tf[i]`` times."""

    rows: np.ndarray  # int32
    terms: np.ndarray  # int32
    tf: np.ndarray  # int32
    doc_len: np.ndarray  # int64, tokens per row (a row with none counts the placeholder "_")
    vocab: list[str]

    @classmethod
    def empty(cls) -> Postings:
        z = np.zeros(0, dtype=np.int32)
        return cls(z, z, z, np.zeros(0, dtype=np.int64), [])

    def drop_rows(self, drop: np.ndarray) -> tuple[Postings, np.ndarray]:
        """Without the rows where ``drop`` (a mask over rows) is set; also each kept row's new number."""
        keep = ~drop
        renumber = np.cumsum(keep) - 1
        on = keep[self.rows]
        return Postings(renumber[self.rows[on]].astype(np.int32), self.terms[on], self.tf[on],
                        self.doc_len[keep], self.vocab), renumber

    def add_docs(self, token_lists: Iterable[list[str]]) -> Postings:
        """These documents appended as new rows."""
        index = {t: i for i, t in enumerate(self.vocab)}
        vocab = list(self.vocab)
        rows, terms, tf, lens = [], [], [], []
        row = len(self.doc_len)
        for toks in token_lists:
            toks = toks or ["_"]
            for term, n in Counter(toks).items():
                tid = index.get(term)
                if tid is None:
                    tid = index[term] = len(vocab)
                    vocab.append(term)
                rows.append(row)
                terms.append(tid)
                tf.append(n)
            lens.append(len(toks))
            row += 1
        return Postings(np.concatenate([self.rows, np.asarray(rows, dtype=np.int32)]),
                        np.concatenate([self.terms, np.asarray(terms, dtype=np.int32)]),
                        np.concatenate([self.tf, np.asarray(tf, dtype=np.int32)]),
                        np.concatenate([self.doc_len, np.asarray(lens, dtype=np.int64)]), vocab)

    def compact(self) -> Postings:
        """Terms no row uses any more are dropped (a fresh build would not know them)."""
        used = np.bincount(self.terms, minlength=len(self.vocab)) > 0
        if used.all():
            return self
        renumber = np.cumsum(used) - 1
        return Postings(self.rows, renumber[self.terms].astype(np.int32), self.tf, self.doc_len,
                        [t for t, u in zip(self.vocab, used, strict=True) if u])


def bm25_of(postings: Postings) -> Any:
    """A bm25s index over ``postings``, equal to what ``bm25s.BM25().index`` makes of the same tokens.

    bm25s computes, per document, ``idf * tf / (k1 * ((1 - b) + b * len / avg_len) + tf)`` in float64
    (``avg_len`` is a numpy float64, so its float32 term counts are promoted), with ``idf`` a float32
    from ``math.log``, and stores the product as float32: the same operations are done here on arrays."""
    import bm25s

    bm25 = bm25s.BM25()
    if (bm25.method, bm25.idf_method) != ("lucene", "lucene"):
        raise ValueError(f"bm25s defaults changed ({bm25.method}/{bm25.idf_method}); update ingest/search_files.py")
    n_docs, n_vocab = len(postings.doc_len), len(postings.vocab)
    avg = np.asarray(postings.doc_len, dtype=np.int64).mean() if n_docs else np.float64(0)
    df = np.bincount(postings.terms, minlength=n_vocab)
    idf = np.zeros(n_vocab, dtype=np.float32)
    for value in np.unique(df[df > 0]):  # math.log, as bm25s, not numpy's own log
        idf[df == value] = math.log(1 + (n_docs - int(value) + 0.5) / (int(value) + 0.5))
    norm = bm25.k1 * ((1 - bm25.b) + bm25.b * postings.doc_len[postings.rows] / avg)
    tf = postings.tf.astype(np.float32).astype(np.float64)
    scores = (idf[postings.terms].astype(np.float64) * (tf / (norm + tf))).astype(np.float32)
    order = np.lexsort((postings.rows, postings.terms))  # CSC: by term, rows ascending within one
    indptr = np.zeros(n_vocab + 1, dtype=np.int32)
    np.cumsum(df, out=indptr[1:])
    bm25.scores = {"data": scores[order], "indices": postings.rows[order].astype(np.int32), "indptr": indptr,
                   "num_docs": n_docs}
    vocab = {t: i for i, t in enumerate(postings.vocab)}
    if "" not in vocab:
        vocab[""] = n_vocab  # bm25s adds the empty token the same way
    bm25.vocab_dict = vocab
    bm25.unique_token_ids_set = set(vocab.values())
    bm25.nonoccurrence_array = None  # only BM25L and BM25+ use it
    return bm25


@dataclass
class Built:
    """A version's keyword side as ingest holds it: the files' content plus what the next ingest updates."""

    files: SearchFiles
    postings: Postings
    word_articles: Counter[str]  # word -> how many articles use it


def update(previous: Built | None, drop_chunk_ids: set[str], old_terms: Sequence[ArticleTerms],
           chunk_ids: Sequence[str], indexed_texts: Sequence[str], new_terms: Sequence[ArticleTerms]) -> Built:
    """``previous`` without the chunks ``drop_chunk_ids`` and the articles whose counts are ``old_terms``,
    plus the chunks ``chunk_ids`` (their indexed texts) and the articles counted in ``new_terms``. Pure."""
    postings, ids = (previous.postings, previous.files.chunk_ids) if previous else (Postings.empty(), [])
    mentions = Counter(previous.files.mentions) if previous else Counter()
    word_articles = Counter(previous.word_articles) if previous else Counter()
    if drop_chunk_ids:
        drop = np.fromiter((cid in drop_chunk_ids for cid in ids), dtype=bool, count=len(ids))
        postings, _ = postings.drop_rows(drop)
        ids = [cid for cid, d in zip(ids, drop, strict=True) if not d]
    postings = postings.add_docs(keyword_tokens(t) for t in indexed_texts).compact()
    ids = [*ids, *chunk_ids]
    for t in old_terms:
        mentions.subtract(t.mentions)
        word_articles.subtract(Counter(t.words))
    for t in new_terms:
        mentions.update(t.mentions)
        word_articles.update(Counter(t.words))
    mentions = +mentions  # drops what no article names any more
    word_articles = +word_articles
    files = SearchFiles(bm25_of(postings), ids, mentions, frozenset(word_articles))
    return Built(files, postings, word_articles)


def build(chunk_ids: Sequence[str], chunks: Sequence[Chunk], indexed_texts: Sequence[str]) -> SearchFiles:
    """The keyword index and term counts of ``chunks`` (aligned with their ids and indexed texts). Pure."""
    return update(None, set(), [], chunk_ids, indexed_texts, [ArticleTerms.of(chunks, indexed_texts)]).files


def write(root: Path, built: Built) -> None:
    """Write into ``root`` (a staged version directory; published with it, so never read half-written)."""
    out = root / SEARCH_DIR
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    built.files.bm25.save(str(out / "bm25"), show_progress=False)
    (out / "chunk_ids.json").write_text(json.dumps(built.files.chunk_ids), encoding="utf-8")
    p = built.postings
    np.savez(out / "postings.npz", rows=p.rows, terms=p.terms, tf=p.tf, doc_len=p.doc_len,
             vocab=np.asarray(p.vocab, dtype=str))
    terms = {"mentions": dict(built.files.mentions), "words": dict(built.word_articles)}
    (out / "terms.json").write_text(json.dumps(terms, ensure_ascii=False), encoding="utf-8")


def read(root: Path) -> SearchFiles:
    """The files of the version at ``root``; FileNotFoundError when they are missing."""
    import bm25s

    src = root / SEARCH_DIR
    chunk_ids = json.loads((src / "chunk_ids.json").read_text(encoding="utf-8"))
    terms = json.loads((src / "terms.json").read_text(encoding="utf-8"))
    bm25 = bm25s.BM25.load(str(src / "bm25"), mmap=True, show_progress=False)
    return SearchFiles(bm25, chunk_ids, Counter(terms["mentions"]), frozenset(terms["words"]))


def read_built(root: Path) -> Built:
    """What the next ingest updates, from the version at ``root``; FileNotFoundError when missing."""
    src = root / SEARCH_DIR
    with np.load(src / "postings.npz") as z:
        postings = Postings(z["rows"], z["terms"], z["tf"], z["doc_len"], z["vocab"].tolist())
    chunk_ids = json.loads((src / "chunk_ids.json").read_text(encoding="utf-8"))
    terms = json.loads((src / "terms.json").read_text(encoding="utf-8"))
    files = SearchFiles(None, chunk_ids, Counter(terms["mentions"]), frozenset(terms["words"]))
    return Built(files, postings, Counter(terms["words"]))
