"""Pack structure blocks into citable chunks. Pure.

Blocks are never split unless one is longer than ``max_chars`` (then at sentence or list-item
boundaries), and chunks never cross a heading. Table rows and FAQ pairs are chunks of their own so
that a question about one muscle or one FAQ retrieves exactly that passage.
"""

from __future__ import annotations

from itertools import groupby

from ingest.models import Article, Block, Chunk
from ingest.sentences import sentence_spans

STANDALONE = ("table", "faq")


def _split_block(text: str, block: Block, target: int) -> list[Block]:
    """Pieces of an over-long block, cut between sentences (or list items); the lead-in of a list
    becomes the prefix of every later piece."""
    spans = sentence_spans(text, block.start, block.end)
    if len(spans) <= 1:
        return [block]
    lead_in = ""
    if block.kind == "list":
        first_line = (
            text[block.start : text.find("\n", block.start, block.end)] if "\n" in text[block.start : block.end] else ""
        )
        lead_in = first_line.strip() if first_line.strip().endswith(":") else ""
    pieces: list[Block] = []
    cur_start = spans[0][0]
    cur_end = spans[0][1]
    for s, e in spans[1:]:
        if e - cur_start > target:
            pieces.append(Block(block.kind, cur_start, cur_end, block.section, block.prefix, block.segment))
            cur_start = s
        cur_end = e
    pieces.append(Block(block.kind, cur_start, cur_end, block.section, block.prefix, block.segment))
    if lead_in:
        pieces = [pieces[0]] + [
            Block(p.kind, p.start, p.end, p.section, lead_in, p.segment) for p in pieces[1:]
        ]
    return pieces


def _pack(blocks: list[Block], target: int, max_chars: int) -> list[list[Block]]:
    groups: list[list[Block]] = []
    for block in blocks:
        if block.kind in STANDALONE:
            groups.append([block])
            continue
        cur = groups[-1] if groups else None
        size = block.end - cur[0].start if cur else 0
        tiny = block.end - block.start < 120  # a stray lead-in line is better inside its neighbour
        if (
            cur
            and cur[0].kind not in STANDALONE
            and (cur[0].kind == "references") == (block.kind == "references")
            and not cur[-1].prefix
            and not block.prefix
            and (size <= target or (tiny and size <= max_chars))
        ):
            cur.append(block)
        else:
            groups.append([block])
    return groups


def chunk_article(article: Article, target_chars: int, max_chars: int) -> list[Chunk]:
    """Chunks of one article, in reading order, with sentence offsets relative to each chunk."""
    text = article.text
    chunks: list[Chunk] = []
    for _, seg_blocks in groupby(article.blocks, key=lambda b: (b.segment, b.section)):
        pieces: list[Block] = []
        for block in seg_blocks:
            too_long = block.end - block.start > max_chars and block.kind != "table"
            pieces.extend(_split_block(text, block, target_chars) if too_long else [block])
        for group in _pack(pieces, target_chars, max_chars):
            start, end = group[0].start, group[-1].end
            kinds = {b.kind for b in group}
            kind = "list" if "list" in kinds else group[0].kind
            chunks.append(
                Chunk(
                    article_id=article.article_id,
                    article_sha=article.sha,
                    title=article.title,
                    section=group[0].section,
                    position=len(chunks),
                    start=start,
                    end=end,
                    text=text[start:end],
                    kind=kind,
                    prefix=group[0].prefix,
                    sentences=tuple((s - start, e - start) for s, e in sentence_spans(text, start, end)),
                )
            )
    return chunks
