"""Request and response bodies of the REST API (pydantic at the edge)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, computed_field

from adaptive_rag.limits import MAX_CHAT_MESSAGES, MAX_QUERY_CHARS, MAX_TIMEOUT_S, MAX_TOP_K
from adaptive_rag.times import iso_time


class QueryRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    query: str = Field(..., min_length=1, max_length=MAX_QUERY_CHARS)
    collection: str = Field(..., min_length=1, max_length=63)
    policy: str | None = None
    top_k: int | None = Field(None, ge=1, le=MAX_TOP_K)
    thresholds: dict[str, float] | None = None
    timeout_s: float | None = Field(None, gt=0, le=MAX_TIMEOUT_S, description="Deadline in seconds (at most the server's).")
    cache: bool = Field(True, description="False: answer again even when the answer cache (ARAG_CACHE) holds this question.")


class Usage(BaseModel):
    input_tokens: int
    output_tokens: int
    total_tokens: int


class CitationOut(BaseModel):
    chunk_id: str
    doc_id: str
    key: str
    score: float
    text: str = ""


class StageOut(BaseModel):
    """One step of a request, in order: the queue wait, retrieval, a router's step, each
    generation. `signals` are what the step measured, `thresholds` what they were compared with."""

    name: str
    model: str | None = None
    engine: str | None = None
    signals: dict[str, Any] = {}
    thresholds: dict[str, float | None] = {}
    outcome: str = ""
    usage: Usage
    latency_ms: float = 0.0


class DecisionRecord(BaseModel):
    """A stored decision (adaptive_rag/decisions.py): why a request took its route, what it cost,
    where its time went. Older records lack the newer fields, which then take these defaults."""

    model_config = ConfigDict(extra="allow")  # a newer writer's fields pass through

    id: str
    collection: str
    policy: str
    query: str
    created_at: float
    stages: list[StageOut] = []
    route: str | None = None
    answer: str | None = None
    citations: list[CitationOut] = []
    usage: Usage
    cost: float | None = 0.0
    status: str = Field("ok", description="ok | error | timeout | cancelled")
    error: str | None = None
    latency_ms: float | None = 0.0
    owner: str | None = Field(None, description="The name of the API key that asked (null: open server, CLI).")
    schema_version: int = 0

    @computed_field(description="created_at as ISO 8601 in UTC, e.g. 2025-06-01T14:03:22.120Z.")  # type: ignore[prop-decorator]
    @property
    def created(self) -> str | None:
        return iso_time(self.created_at)


class DecisionPage(BaseModel):
    items: list[DecisionRecord]
    limit: int
    offset: int
    count: int = Field(..., description="Items on this page.")
    total: int = Field(..., description="Decisions matching the filters, on all pages.")


class QueryResponse(BaseModel):
    id: str
    answer: str | None
    route: str | None
    citations: list[CitationOut]
    usage: Usage
    cost: float
    decision: DecisionRecord


class CollectionOut(BaseModel):
    name: str
    documents: int
    chunks: int
    embedder: str
    dim: int


class ContentPart(BaseModel):
    """One part of a chat message's content; only `text` parts are read (`text` must be a string)."""

    model_config = ConfigDict(extra="allow")

    type: str
    text: str | None = None


class ChatMessage(BaseModel):
    role: str
    content: str | list[ContentPart] | None = None




class ChatCompletionRequest(BaseModel):
    """The OpenAI fields we use; the rest (temperature, stream=false, ...) are accepted and ignored."""

    model_config = ConfigDict(extra="allow")

    model: str
    messages: list[ChatMessage] = Field(..., min_length=1, max_length=MAX_CHAT_MESSAGES)
    stream: bool | None = False
    cache: bool = Field(True, description="False: skip the answer cache (ARAG_CACHE) for this request.")


