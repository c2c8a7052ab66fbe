"""Read the corpus directory: find articles, apply the manifest, reject bad files with a clear message.

This is the I/O edge of ingestion; everything after it works on decoded text.
"""

from __future__ import annotations

import json
import logging
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ingest.errors import CorpusFileInvalid, CorpusMissing, DuplicateArticleId
from ingest.models import SourceDoc

log = logging.getLogger(__name__)

ARTICLE_SUFFIXES = (".txt", ".md", ".html", ".htm")
MANIFEST_NAME = "manifest.json"
# Data files that live beside the articles and are not articles themselves.
DATA_SUFFIXES = (".json",)


def slugify(value: str) -> str:
    value = unicodedata.normalize("NFKD", value).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", value.lower()).strip("-")


def load_manifest(corpus_dir: Path) -> dict[str, dict[str, Any]]:
    """Manifest records keyed by file name. A missing manifest is fine: every field can be derived."""
    path = corpus_dir / MANIFEST_NAME
    if not path.exists():
        return {}
    try:
        records = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise CorpusFileInvalid(f"{path}: not valid JSON ({err}) — fix the manifest or remove it") from err
    if not isinstance(records, list) or not all(isinstance(r, dict) and "file" in r for r in records):
        raise CorpusFileInvalid(f"{path}: expected a list of objects with at least a 'file' key — fix the manifest")
    by_file: dict[str, dict[str, Any]] = {}
    for rec in records:
        if rec["file"] in by_file:
            raise DuplicateArticleId(f"{path}: file {rec['file']!r} is listed twice — keep one entry")
        by_file[rec["file"]] = rec
    return by_file


def decode_article(path: Path, data: bytes, max_bytes: int) -> str:
    """Decoded text of one article file, or a CorpusFileInvalid that names the file and the fix."""
    if len(data) > max_bytes:
        raise CorpusFileInvalid(
            f"{path}: {len(data):,} bytes is over the {max_bytes:,}-byte limit — "
            "split the article or raise STRIDE_MAX_FILE_BYTES"
        )
    if b"\x00" in data:
        raise CorpusFileInvalid(f"{path}: looks binary (NUL bytes) — save the article as UTF-8 text or remove it")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise CorpusFileInvalid(
            f"{path}: not UTF-8 text (byte {err.start}) — re-save it as UTF-8 or remove it"
        ) from err
    if not text.strip():
        raise CorpusFileInvalid(f"{path}: file is empty — add the article text or remove the file")
    return text.replace("\r\n", "\n").replace("\r", "\n")


def html_to_text(path: Path, html: str) -> tuple[str, str | None]:
    """Main text (as markdown, so headings survive) and title of an HTML page, via trafilatura."""
    import trafilatura  # imported lazily: only HTML articles need it

    text = trafilatura.extract(html, output_format="markdown", include_tables=True, include_comments=False)
    if not text or not text.strip():
        raise CorpusFileInvalid(f"{path}: no article text found in the HTML — check the file or save it as .txt")
    meta = trafilatura.extract_metadata(html)
    return text, (meta.title if meta and meta.title else None)


@dataclass(frozen=True)
class CorpusFile:
    """An article file as found, not yet decoded: enough to tell whether it changed since the last ingest."""

    path: Path
    data: bytes
    manifest: dict[str, Any]  # its manifest entry ({} when it has none)
    article_id: str


def list_corpus(corpus_dir: Path) -> list[CorpusFile]:
    """The article files in ``corpus_dir`` sorted by name, with their ids (checked to be unique slugs)."""
    if not corpus_dir.is_dir():
        raise CorpusMissing(f"corpus directory '{corpus_dir}' does not exist — create it or pass --corpus DIR")
    manifest = load_manifest(corpus_dir)
    files = sorted(p for p in corpus_dir.iterdir() if p.is_file() and not p.name.startswith("."))
    out: list[CorpusFile] = []
    seen_ids: dict[str, str] = {}
    for path in files:
        suffix = path.suffix.lower()
        if suffix in DATA_SUFFIXES:
            continue
        if suffix not in ARTICLE_SUFFIXES:
            log.warning("skipping %s: not an article (.txt, .md or .html)", path)
            continue
        rec = manifest.get(path.name, {})
        article_id = rec.get("id") or slugify(path.stem)
        if not article_id or slugify(article_id) != article_id:
            raise CorpusFileInvalid(f"{path}: article id {article_id!r} must be a lowercase slug like 'hip-exercises'")
        if article_id in seen_ids:
            raise DuplicateArticleId(
                f"{path}: article id {article_id!r} is already used by {seen_ids[article_id]} — "
                "give one of them another id in manifest.json or rename the file"
            )
        seen_ids[article_id] = path.name
        out.append(CorpusFile(path, path.read_bytes(), rec, article_id))
    missing = sorted(set(manifest) - {f.path.name for f in out})
    if missing:
        log.warning("manifest.json lists files that are not in %s: %s", corpus_dir, ", ".join(missing))
    if not out:
        raise CorpusMissing(f"no articles (.txt, .md, .html) in '{corpus_dir}' — add at least one")
    return out


def decode_file(file: CorpusFile, max_bytes: int) -> SourceDoc:
    """The decoded article (HTML through its main-text extractor); CorpusFileInvalid names the fix."""
    path, rec = file.path, file.manifest
    text = decode_article(path, file.data, max_bytes)
    title = rec.get("title")
    if path.suffix.lower() in (".html", ".htm"):
        text, html_title = html_to_text(path, text)
        title = title or html_title
    return SourceDoc(article_id=file.article_id, file=path.name, text=text, title=title,
                     publisher=rec.get("publisher"), author=rec.get("author"))


def read_corpus(corpus_dir: Path, max_bytes: int) -> list[SourceDoc]:
    """All articles in ``corpus_dir``, sorted by file name; raises before anything is written."""
    return [decode_file(f, max_bytes) for f in list_corpus(corpus_dir)]


def raw_texts(corpus_dir: Path, max_bytes: int) -> dict[str, str]:
    """Article id -> the article's text as read (before cleaning): what quotes are checked against."""
    return {d.article_id: d.text for d in read_corpus(corpus_dir, max_bytes)}
