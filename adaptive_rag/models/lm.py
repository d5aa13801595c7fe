"""Language-model backends behind one interface: text in (chat messages), text out with per-token
log-probs (and top-k alternatives where the backend has them) and a TokenUsage.

Backends: `transformers` (local GGUF or HF directory, greedy, bf16 where the CPU has it) and
`openai` (any OpenAI-compatible server: vLLM, llama.cpp server, hosted APIs).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Sequence

from adaptive_rag.usage import TokenUsage


class BackendError(Exception):
    """The model backend failed (server down, timeout, malformed reply); maps to HTTP 502/503."""

    def __init__(self, message: str, retryable: bool = False):
        super().__init__(message)
        self.retryable = retryable
        self.decision_id: str | None = None  # set by the engine once the failure is recorded


@dataclass(frozen=True)
class Message:
    role: str  # "system" | "user" | "assistant"
    content: str


@dataclass(frozen=True)
class TokenLogprob:
    token: str
    logprob: float
    top: tuple[tuple[str, float], ...] = ()  # alternatives (token, logprob), best first


@dataclass(frozen=True)
class Generation:
    text: str
    tokens: tuple[TokenLogprob, ...]
    usage: TokenUsage
    model: str
    latency_ms: float = 0.0
    finish_reason: str = "stop"
    extra: dict = field(default_factory=dict)

    @property
    def has_logprobs(self) -> bool:
        return bool(self.tokens) and all(math.isfinite(t.logprob) for t in self.tokens)


class LanguageModel(ABC):
    name: str
    context_window: int

    @abstractmethod
    def generate(self, messages: Sequence[Message], max_new_tokens: int = 32,
                 first_token_candidates: Sequence[str] = ()) -> Generation:
        """Greedy generation. `first_token_candidates` asks for the log-prob of these strings'
        first tokens at the first position (e.g. the refusal word), returned in `extra`."""

    @abstractmethod
    def count_tokens(self, text: str) -> int:
        """Tokens of `text` in this model's tokenizer (budgets for long context)."""
