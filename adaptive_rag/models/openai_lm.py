"""Remote engine: any OpenAI-compatible chat-completions server (vLLM, llama.cpp server, hosted
APIs) through the official `openai` SDK, asking for `logprobs` and `top_logprobs`.

Failures become BackendError with a message that names the server: connection errors, timeouts,
429 and 5xx are retried (the SDK's exponential backoff, `max_retries`); 4xx are not. A server
that returns no log-probs still answers; the generation then has `has_logprobs == False`, and
log-prob signals are reported as unavailable rather than invented. The refusal word's first-token
log-prob is known only when the server listed that token among its top alternatives; otherwise it
is None (below the top-k, value unknown), never a guessed number.

Under a request's control (adaptive_rag/models/control.py) the completion is streamed: each piece of
text goes to `on_text` while the request's final answer is generated, and a cancelled or late
request closes the stream between tokens (the server then stops generating). A remote server is
streamed only for the final answer (`on_text`); the local llama.cpp server, whose streamed
log-probs equal its plain ones, always (`streams_for_control`)."""

from __future__ import annotations

import math
import time
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from adaptive_rag.errors import ConfigError
from adaptive_rag.models.control import current as current_control
from adaptive_rag.models.lm import BackendError, Generation, LanguageModel, Message, TokenLogprob
from adaptive_rag.usage import TokenUsage

if TYPE_CHECKING:  # pragma: no cover
    from adaptive_rag.models.catalog import ModelSpec

TOP_LOGPROBS = 5


def cached_tokens(usage) -> int:
    """Prompt tokens the server took from its prompt cache (0 when it does not say)."""
    return int(getattr(getattr(usage, "prompt_tokens_details", None), "cached_tokens", 0) or 0) if usage else 0


class OpenAICompatibleLM(LanguageModel):
    engine = "openai"
    spec_fields = frozenset({"url", "remote_model", "api_key"})
    streams_for_control = False  # stream every call under a request's control (see the module docstring)

    def __init__(self, name: str, base_url: str, model: str, context_window: int, api_key: str | None = None,
                 timeout_s: float = 60.0, max_retries: int = 2, tokenizer_model=None):
        self.name = name
        self.context_window = context_window
        self.model = model
        self.base_url = base_url
        self._api_key, self._timeout_s, self._max_retries = api_key, timeout_s, max_retries
        self._client = None
        if base_url:
            self._connect(base_url)
        self._tokenizer_model = tokenizer_model  # a local LanguageModel whose tokenizer counts for budgets

    @classmethod
    def check_spec(cls, name: str, spec: "ModelSpec") -> None:
        if not spec.url:
            raise ConfigError(f"model {name!r} uses the openai engine but has no url")

    @classmethod
    def from_spec(cls, name: str, spec: "ModelSpec", models_dir: Path) -> "OpenAICompatibleLM":
        return cls(name, spec.url, spec.remote_model or name, spec.context_window, spec.api_key)

    def describe(self) -> dict:
        return {"engine": self.engine, "url": self.base_url, "remote_model": self.model}

    def _connect(self, base_url: str):
        try:
            import openai
        except ImportError as exc:  # pragma: no cover
            raise BackendError("the OpenAI-compatible engine needs `pip install openai`") from exc
        self._openai = openai
        self.base_url = base_url
        self._client = openai.OpenAI(base_url=base_url, api_key=self._api_key or "not-needed",
                                     timeout=self._timeout_s, max_retries=self._max_retries)

    def _ready(self):
        if self._client is None:
            self._connect(self.base_url)
        return self._client

    def count_tokens(self, text: str) -> int:
        if self._tokenizer_model is not None:
            return self._tokenizer_model.count_tokens(text)
        return max(1, math.ceil(len(text) / 4))  # the usual ~4 characters/token estimate for English

    @contextmanager
    def _backend_errors(self):
        """The SDK's failures as BackendError naming the server."""
        openai = self._openai
        try:
            yield
        except openai.APITimeoutError as exc:
            raise BackendError(f"{self.name}: {self.base_url} timed out", retryable=True) from exc
        except openai.APIConnectionError as exc:
            raise BackendError(f"{self.name}: cannot reach {self.base_url} ({exc.__cause__ or exc})", retryable=True) from exc
        except openai.APIStatusError as exc:
            detail = str(getattr(exc, "message", exc))[:200]
            raise BackendError(f"{self.name}: {self.base_url} answered HTTP {exc.status_code}: {detail}",
                               retryable=exc.status_code >= 500 or exc.status_code == 429) from exc

    def _create(self, messages: Sequence[Message], max_new_tokens: int, **extra: Any):
        """One chat completion (greedy, with log-probs); failures become BackendError. `extra`
        holds further request parameters (`logit_bias`, `extra_body`, `stream`)."""
        client = self._ready()
        extra.setdefault("temperature", 0.0)
        with self._backend_errors():
            reply = client.chat.completions.create(
                model=self.model, messages=[{"role": m.role, "content": m.content} for m in messages],
                max_tokens=max_new_tokens, logprobs=True, top_logprobs=TOP_LOGPROBS, **extra,
            )
        if not extra.get("stream") and not reply.choices:
            raise BackendError(f"{self.name}: {self.base_url} returned no choices")
        return reply

    def _completion(self, messages: Sequence[Message], max_new_tokens: int, **extra: Any):
        """(text, log-prob items, finish reason, usage) of one completion: plain, or streamed under
        a request's control (text pieces to `on_text`, the stream closed when the request stops)."""
        control = current_control()
        if control is None or (control.on_text is None and not self.streams_for_control):
            reply = self._create(messages, max_new_tokens, **extra)
            choice = reply.choices[0]
            content = getattr(choice.logprobs, "content", None) if choice.logprobs else None
            return choice.message.content or "", list(content or []), choice.finish_reason, reply.usage
        control.raise_if_stopped("before its next model call")
        stream = self._create(messages, max_new_tokens, stream=True, stream_options={"include_usage": True}, **extra)
        text, items, finish, usage = [], [], None, None
        try:
            with self._backend_errors():
                for chunk in stream:
                    usage = chunk.usage or usage
                    if not chunk.choices:
                        continue
                    choice = chunk.choices[0]
                    finish = choice.finish_reason or finish
                    items += list(getattr(choice.logprobs, "content", None) or []) if choice.logprobs else []
                    piece = choice.delta.content if choice.delta else None
                    if piece:
                        text.append(piece)
                        if control.on_text is not None:
                            control.on_text(piece if len(text) > 1 else piece.lstrip())
                    if control.should_stop():
                        break
        finally:
            stream.close()  # a stream left early: the server stops generating for it
        control.raise_if_stopped("while generating")
        return "".join(text), items, finish, usage

    @staticmethod
    def _first_token_logprobs(first: TokenLogprob | None, words: Sequence[str]) -> dict[str, float | None]:
        """Only what the server returned among its top-k; absent candidates are below them (None)."""
        top = first.top if first is not None else ()
        return {word: max((lp for tok, lp in top if tok.strip() and word.lower().startswith(tok.strip().lower())),
                          default=None)
                for word in words}

    def sample(self, messages: Sequence[Message], max_new_tokens: int = 32, temperature: float = 0.7,
               seed: int = 0, **extra: Any) -> Generation:
        return self.generate(messages, max_new_tokens, temperature=temperature, seed=seed, **extra)

    def generate(self, messages: Sequence[Message], max_new_tokens: int = 32,
                 first_token_candidates: Sequence[str] = (), **extra: Any) -> Generation:
        started = time.perf_counter()
        raw, content, finish_reason, usage = self._completion(messages, max_new_tokens, **extra)
        text = raw.strip()
        tokens = [TokenLogprob(token=item.token, logprob=float(item.logprob),
                               top=tuple((alt.token, float(alt.logprob)) for alt in (item.top_logprobs or [])))
                  for item in content or []]
        extra: dict = {}
        if first_token_candidates:
            extra["first_token_logprobs"] = self._first_token_logprobs(tokens[0] if tokens else None,
                                                                       first_token_candidates)
        latency_ms = (time.perf_counter() - started) * 1e3
        token_usage = TokenUsage(usage.prompt_tokens, usage.completion_tokens) if usage else TokenUsage(
            sum(self.count_tokens(m.content) for m in messages), len(tokens))
        if cached_tokens(usage):
            extra["cached_prompt_tokens"] = cached_tokens(usage)
        return Generation(text=text, tokens=tuple(tokens), usage=token_usage, model=self.name, latency_ms=latency_ms,
                          finish_reason=finish_reason or "stop", extra=extra)
