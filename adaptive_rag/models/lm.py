"""Language models behind one interface: text in (chat messages), text out with per-token
log-probs (and top-k alternatives where the engine has them) and a TokenUsage.

Each generation engine is a `LanguageModel` subclass named by `engine`; `engines.py` keeps the
name -> class registry that `ModelSpec.backend` picks from: `llamacpp` (llama.cpp in process,
parallel slots, prompt cache), `transformers` (local GGUF or HF directory, dtype from the CPU) and
`openai` (any OpenAI-compatible server: vLLM, llama.cpp server, hosted APIs).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, Sequence

from adaptive_rag.usage import TokenUsage

if TYPE_CHECKING:  # pragma: no cover
    from adaptive_rag.models.catalog import ModelSpec


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
    """One model on one engine. `generate` may be called from many threads at once; an engine
    that cannot run requests concurrently serialises them itself."""

    name: str
    context_window: int
    engine: ClassVar[str] = "custom"
    # the ModelSpec fields this engine reads (besides the ones every engine has); a spec that sets
    # another one is refused, so that a setting meant for another engine is never silently ignored
    spec_fields: ClassVar[frozenset[str]] = frozenset()

    @classmethod
    def check_spec(cls, name: str, spec: "ModelSpec") -> None:
        """Raise ConfigError naming what is missing or wrong in `spec` for this engine."""

    @classmethod
    def from_spec(cls, name: str, spec: "ModelSpec", models_dir: Path) -> "LanguageModel":
        raise NotImplementedError(f"engine {cls.engine!r} cannot be built from a catalog entry")

    def describe(self) -> dict:
        """What runs this model: engine plus its own facts (dtype, quantization, threads, slots)."""
        return {"engine": self.engine}

    @property
    def label(self) -> str:
        """The engine in a few words, e.g. "llamacpp Q4_K_M", "transformers float32" or "openai
        gpt-x" (quantization, dtype or remote model from `describe`): shown in `arag models list`
        and recorded with every generation stage."""
        facts = self.describe()
        detail = facts.get("quantization") or facts.get("dtype") or facts.get("remote_model")
        return f"{facts['engine']} {detail}" if detail else facts["engine"]

    @property
    def identity(self) -> str:
        """Model and engine: answers cached under one identity are never served for another."""
        return f"{self.name}|{self.label}"

    @property
    def probe_signals(self) -> tuple[str, ...]:
        """The probe signals this model's generations carry (attach_probe); none by default."""
        return ()

    @property
    def answer_probe(self):
        """The attached answer-kind probe (gatekeeper.answer_probe.AnswerProbe), or None."""
        return None

    def attach_probe(self, probe) -> None:
        """Read `probe` (gatekeeper.answer_probe.AnswerProbe) from every greedy generation and record
        its P(wrong) in the Generation's `extra` under `probe.signal`. Only engines that can read
        their own hidden states can (transformers)."""
        from adaptive_rag.errors import ConfigError

        raise ConfigError(f"the {self.engine} engine cannot read hidden states, so model {self.name!r} cannot "
                          "serve an answer probe (probes run on the transformers engine)")

    def load(self) -> None:
        """Load weights or start the engine now (a server does at start, so no request waits)."""

    def close(self) -> None:
        """Release what `load` started."""

    @abstractmethod
    def generate(self, messages: Sequence[Message], max_new_tokens: int = 32,
                 first_token_candidates: Sequence[str] = ()) -> Generation:
        """Greedy generation. `first_token_candidates` asks for the log-prob of these strings'
        first tokens at the first position (e.g. the refusal word), returned in `extra`."""

    def sample(self, messages: Sequence[Message], max_new_tokens: int = 32, temperature: float = 0.7,
               seed: int = 0) -> Generation:
        """One sampled (not greedy) answer at `temperature`, reproducible for a `seed` on the same
        engine: the self-consistency signal compares a few of them with the greedy answer."""
        raise NotImplementedError(f"the {self.engine} engine cannot sample")

    @abstractmethod
    def count_tokens(self, text: str) -> int:
        """Tokens of `text` in this model's tokenizer (budgets for long context)."""
