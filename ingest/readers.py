"""Readers turn a source (file, folder, JSONL, SQuAD or HotpotQA set) into SourceDocuments.

Every problem with the input becomes a `ReadProblem` (one line a user can act on) and reading
goes on with the rest; nothing here raises for bad data.
"""

from __future__ import annotations

import ast
import csv
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

from adaptive_rag.errors import UnknownNameError
from adaptive_rag.registry import lookup
from adaptive_rag.types import SourceChunk, SourceDocument, content_hash


@dataclass(frozen=True)
class ReadProblem:
    source: str
    message: str

    def __str__(self) -> str:
        return f"{self.source}: {self.message}"


ReadResult = SourceDocument | ReadProblem


def _decode_text(path: Path) -> str | ReadProblem:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        return ReadProblem(str(path), f"unreadable ({exc.strerror or exc})")
    if b"\x00" in raw[:8192]:
        return ReadProblem(str(path), "looks binary (NUL bytes), skipped")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        return ReadProblem(str(path), f"not UTF-8 text (byte {exc.start}), skipped")


def _read_plain(path: Path) -> str | ReadProblem:
    return _decode_text(path)


def _read_html(path: Path) -> str | ReadProblem:
    text = _decode_text(path)
    if isinstance(text, ReadProblem):
        return text
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(text, "html.parser")
    for tag in soup(["script", "style", "noscript", "template"]):
        tag.decompose()
    lines = (line.strip() for line in soup.get_text("\n").splitlines())
    return "\n".join(line for line in lines if line)


def _read_with_llamaindex(reader_name: str) -> Callable[[Path], str | ReadProblem]:
    """A PDF or DOCX through llama-index's reader, tried once. A file its parser cannot read is one
    ReadProblem naming the parser's reason: PDFReader retries a failing file three times (tenacity)
    and then raises RetryError around the real error, and pypdf logs a warning per attempt; both
    are unwrapped or silenced here so a broken file reads as one line."""
    def read(path: Path) -> str | ReadProblem:
        import logging

        from llama_index.readers import file as readers

        logging.getLogger("pypdf").setLevel(logging.ERROR)  # "EOF marker not found" x attempts
        reader = readers.PDFReader(return_full_document=True) if reader_name == "pdf" else readers.DocxReader()
        load = type(reader).load_data
        if hasattr(load, "retry_with"):  # tenacity-wrapped: one attempt, its own exception
            from tenacity import stop_after_attempt

            load = load.retry_with(stop=stop_after_attempt(1), reraise=True)
        try:
            docs = load(reader, path)
        except Exception as exc:  # corrupt files raise whatever their parser raises
            reason = " ".join(str(exc).split()) or type(exc).__name__
            return ReadProblem(str(path), f"cannot read as {reader_name.upper()} ({reason}), skipped")
        return "\n\n".join(d.text for d in docs)

    return read


FILE_READERS: dict[str, Callable[[Path], str | ReadProblem]] = {
    ".txt": _read_plain, ".md": _read_plain, ".markdown": _read_plain, ".rst": _read_plain,
    ".html": _read_html, ".htm": _read_html,
    ".pdf": _read_with_llamaindex("pdf"), ".docx": _read_with_llamaindex("docx"),
}


def _document(doc_id: str, text: str, source: str, title: str = "", metadata: dict | None = None,
              chunks: tuple[SourceChunk, ...] | None = None) -> ReadResult:
    if not text.strip():
        return ReadProblem(source, "empty document, skipped")
    return SourceDocument(doc_id=doc_id, text=text, title=title, source=source, metadata=metadata or {}, chunks=chunks)


def read_file(path: Path, doc_id: str, name: str | None = None) -> ReadResult:
    """`name` replaces the path as the source (an uploaded file is stored under a temporary path)."""
    source = name or str(path)
    try:
        reader = lookup(FILE_READERS, path.suffix.lower() or "(no extension)", "format", also_valid=(".jsonl",))
    except UnknownNameError as exc:  # one problem line for this file; the others are still read
        return ReadProblem(source, str(exc))
    text = reader(path)
    if isinstance(text, ReadProblem):
        return ReadProblem(source, text.message)
    return _document(doc_id, text, source, title=path.stem)


def read_folder(root: Path) -> Iterator[ReadResult]:
    """Every file below `root` (hidden ones skipped); doc id = path relative to `root`."""
    files = sorted(p for p in root.rglob("*") if p.is_file() and not any(part.startswith(".") for part in p.relative_to(root).parts))
    if not files:
        yield ReadProblem(str(root), "folder holds no files")
    for path in files:
        if path.suffix.lower() == ".jsonl":
            yield from read_jsonl(path)
        else:
            yield read_file(path, path.relative_to(root).as_posix())


def read_jsonl(path: Path, name: str | None = None) -> Iterator[ReadResult]:
    """One `{"id", "text", "title"?, "metadata"?, "source"?, "chunks"?}` object per line.

    `source` (a string) names where the document came from (default: `<file>:<line>`); `chunks`
    (a list of `{"text", "key"}`) passes the document's chunks as a pre-chunked reader (SQuAD)
    would, so `arag ingest --server` can send what any reader produced. `name` replaces the file's
    path in sources and problems (an uploaded body is stored under a temporary name)."""
    text = _decode_text(path)
    if isinstance(text, ReadProblem):
        yield ReadProblem(name or str(path), text.message)
        return
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{name or path}:{number}"
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            yield ReadProblem(where, f"invalid JSON ({exc.msg} at column {exc.colno})")
            continue
        if not isinstance(obj, dict):
            yield ReadProblem(where, "expected a JSON object")
            continue
        doc_id, body = obj.get("id"), obj.get("text")
        if not isinstance(doc_id, (str, int)) or isinstance(doc_id, bool) or str(doc_id).strip() == "":
            yield ReadProblem(where, "missing or invalid \"id\" (a non-empty string or integer)")
            continue
        if not isinstance(body, str):
            yield ReadProblem(where, "missing or invalid \"text\" (a string)")
            continue
        metadata = obj.get("metadata") or {}
        if not isinstance(metadata, dict):
            yield ReadProblem(where, "\"metadata\" must be an object")
            continue
        source, chunks = obj.get("source", where), obj.get("chunks")
        if not isinstance(source, str):
            yield ReadProblem(where, "\"source\" must be a string")
            continue
        if chunks is not None:
            if not isinstance(chunks, list) or not all(
                    isinstance(c, dict) and isinstance(c.get("text"), str) and isinstance(c.get("key"), str)
                    for c in chunks):
                yield ReadProblem(where, "\"chunks\" must be a list of {\"text\", \"key\"} strings")
                continue
            chunks = tuple(SourceChunk(text=c["text"], key=c["key"]) for c in chunks)
        try:  # a JSON escape can make a lone surrogate, which no UTF-8 store can hold
            json.dumps(obj, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            yield ReadProblem(where, "holds text that is not valid Unicode (a lone surrogate?)")
            continue
        title = obj.get("title") or ""
        yield _document(str(doc_id), body, source, title=str(title), metadata=metadata, chunks=chunks)


def read_squad(path: Path) -> Iterator[ReadResult]:
    """SQuAD v1.1 layout: each article a document, each paragraph a chunk keyed `title#i`."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        articles = data["data"]
        if not isinstance(articles, list):
            raise TypeError("'data' is not a list")
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError) as exc:
        yield ReadProblem(str(path), f"not a SQuAD-format JSON file ({type(exc).__name__}: {exc})")
        return
    for number, article in enumerate(articles):
        try:
            title = str(article["title"])
            contexts = [str(p["context"]) for p in article["paragraphs"]]
        except (KeyError, TypeError) as exc:
            yield ReadProblem(f"{path}#article{number}", f"malformed article ({type(exc).__name__}: {exc})")
            continue
        chunks = tuple(SourceChunk(text=c, key=f"{title}#{i}") for i, c in enumerate(contexts) if c.strip())
        yield _document(title, "\n\n".join(contexts), f"{path}#{title}", title=title.replace("_", " "),
                        metadata={"dataset": "squad", "article_index": number}, chunks=chunks)


_NUMPY_ITEM_BREAK = re.compile(r"\}\s*\n\s*\{")


def parse_hotpotqa_context(text: str) -> list[dict]:
    """The `context` column: a list of paragraph dicts, written either as a Python literal or, as
    in ../shared/data, in numpy's array repr, whose items are separated by newlines, not commas."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return ast.literal_eval(_NUMPY_ITEM_BREAK.sub("}, {", text))


def read_hotpotqa(path: Path) -> Iterator[ReadResult]:
    """HotpotQA CSV (see ../shared/data/README.md): each titled paragraph a document whose id is
    its title (`title#hash8` when two different paragraphs share a title)."""
    csv.field_size_limit(sys.maxsize)
    try:
        handle = open(path, newline="", encoding="utf-8")
    except OSError as exc:
        yield ReadProblem(str(path), f"unreadable ({exc.strerror or exc})")
        return
    seen: dict[str, str] = {}
    with handle:
        reader = csv.DictReader(handle)
        if not reader.fieldnames or "context" not in reader.fieldnames:
            yield ReadProblem(str(path), "not a HotpotQA CSV (no 'context' column)")
            return
        for row in reader:
            try:
                paragraphs = parse_hotpotqa_context(row["context"])
            except (ValueError, SyntaxError) as exc:
                yield ReadProblem(f"{path}:{reader.line_num}", f"unparseable context ({exc})")
                continue
            for para in paragraphs:
                title, text = str(para.get("title", "")), str(para.get("paragraph_text", ""))
                digest = content_hash(text)
                doc_id = title if seen.get(title, digest) == digest else f"{title}#{digest[:8]}"
                if doc_id in seen:
                    continue
                seen[doc_id] = digest
                yield _document(doc_id, text, f"{path}#{title}", title=title, metadata={"dataset": "hotpotqa"},
                                chunks=(SourceChunk(text=text, key=doc_id),))
