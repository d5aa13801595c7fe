"""Request limits: every bound on what one request may ask for, defined once. The API schemas,
the settings, the query engine and the retriever import these; what an operator may tighten per
key (ARAG_MAX_REQUEST_TOP_K, ARAG_THRESHOLD_BOUNDS, budgets) is in adaptive_rag/api/limits.py.

- MAX_QUERY_CHARS: a question (and a search query) is at most this many characters;
- MAX_TOP_K: chunks one answer may read (the `top_k` setting and a request's `top_k`);
- MAX_SEARCH_K: hits one search may return (long context reads down to rank 50);
- MAX_CHAT_MESSAGES: messages in one chat completion request;
- MAX_UPLOAD_FILES, MAX_FILE_NAME_BYTES: files in one multipart ingest, bytes of one path part;
- MAX_TIMEOUT_S: the longest deadline a request or the server may set;
- body sizes: the defaults and the floor of ARAG_MAX_BODY_BYTES / ARAG_MAX_INGEST_BYTES;
- names: collections (COLLECTION_NAME) and trained artifacts such as routers (ARTIFACT_NAME).
"""

from __future__ import annotations

import re
from typing import Iterable

from adaptive_rag.errors import ConfigError, UserError

MAX_QUERY_CHARS = 4000
MAX_TOP_K = 50
DEFAULT_MAX_REQUEST_TOP_K = 10
MAX_SEARCH_K = 1000
MAX_CHAT_MESSAGES = 256
MAX_UPLOAD_FILES = 1000
MAX_FILE_NAME_BYTES = 255  # one folder or file name, as file systems allow (NAME_MAX)
MAX_TIMEOUT_S = 3600.0

MIN_BODY_BYTES = 1024
DEFAULT_MAX_BODY_BYTES = 1_048_576
DEFAULT_MAX_INGEST_BYTES = 64 * 1_048_576

COLLECTION_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
ARTIFACT_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


def check_query_text(query: object, history: Iterable[str] = ()) -> str:
    """A question a model may read: a non-blank string of at most MAX_QUERY_CHARS characters,
    valid Unicode like every earlier chat turn in `history`. Returns it; UserError otherwise."""
    if not isinstance(query, str) or not query.replace("\x00", "").strip():
        raise UserError("empty query")
    for text in (query, *history):
        try:
            text.encode("utf-8")
        except (UnicodeEncodeError, AttributeError):
            raise UserError("the query or a chat turn holds text that is not valid Unicode (a lone surrogate?)") from None
    if len(query) > MAX_QUERY_CHARS:
        raise UserError(f"query too long: {len(query)} characters (at most {MAX_QUERY_CHARS})")
    return query


def check_range(name: str, value: int, high: int, low: int = 1) -> int:
    """`value` within [low, high], else a UserError naming `name` and the bounds."""
    if not low <= value <= high:
        raise UserError(f"{name} must be between {low} and {high}, got {value}")
    return value


def check_artifact_name(name: str, what: str) -> str:
    """The name of a trained artifact (a router, a gatekeeper): 1-64 letters, digits, '_', '-' or '.'."""
    if not isinstance(name, str) or not ARTIFACT_NAME.match(name):
        raise ConfigError(f"{what} name {name!r}: use 1-64 letters, digits, '_', '-' or '.'")
    return name
