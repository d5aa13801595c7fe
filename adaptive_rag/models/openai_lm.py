"""Remote backend: any OpenAI-compatible chat-completions server (vLLM, llama.cpp server, hosted
APIs) through the official `openai` SDK, asking for `logprobs` and `top_logprobs`.

Failures become BackendError with a message that names the server: connection errors, timeouts,
429 and 5xx are retried (the SDK's exponential backoff, `max_retries`); 4xx are not. A server
that returns no log-probs still answers; the generation then has `has_logprobs == False`, and
log-prob signals are reported as unavailable rather than invented."""

from __future__ import annotations

import math
import time
from typing import Sequence

from adaptive_rag.models.lm import BackendError, Generation, LanguageModel, Message, TokenLogprob
from adaptive_rag.usage import TokenUsage

TOP_LOGPROBS = 5


class OpenAICompatibleLM(LanguageModel):
    def __init__(self, name: str, base_url: str, model: str, context_window: int, api_key: str | None = None,
                 timeout_s: float = 60.0, max_retries: int = 2, tokenizer_model=None):
        try:
            import openai
        except ImportError as exc:  # pragma: no cover
            raise BackendError("the OpenAI-compatible backend needs `pip install openai`") from exc
        self._openai = openai
        self.name = name
        self.context_window = context_window
        self.model = model
        self.base_url = base_url
        self._client = openai.OpenAI(base_url=base_url, api_key=api_key or "not-needed", timeout=timeout_s,
                                     max_retries=max_retries)
        self._tokenizer_model = tokenizer_model  # a local LanguageModel whose tokenizer counts for budgets

    def count_tokens(self, text: str) -> int:
        if self._tokenizer_model is not None:
            return self._tokenizer_model.count_tokens(text)
        return max(1, math.ceil(len(text) / 4))  # the usual ~4 characters/token estimate for English

    def generate(self, messages: Sequence[Message], max_new_tokens: int = 32,
                 first_token_candidates: Sequence[str] = ()) -> Generation:
        openai = self._openai
        started = time.perf_counter()
        try:
            reply = self._client.chat.completions.create(
                model=self.model, messages=[{"role": m.role, "content": m.content} for m in messages],
                max_tokens=max_new_tokens, temperature=0.0, logprobs=True, top_logprobs=TOP_LOGPROBS,
            )
        except openai.APITimeoutError as exc:
            raise BackendError(f"{self.name}: {self.base_url} timed out", retryable=True) from exc
        except openai.APIConnectionError as exc:
            raise BackendError(f"{self.name}: cannot reach {self.base_url} ({exc.__cause__ or exc})", retryable=True) from exc
        except openai.APIStatusError as exc:
            detail = str(getattr(exc, "message", exc))[:200]
            raise BackendError(f"{self.name}: {self.base_url} answered HTTP {exc.status_code}: {detail}",
                               retryable=exc.status_code >= 500 or exc.status_code == 429) from exc
        latency_ms = (time.perf_counter() - started) * 1e3
        if not reply.choices:
            raise BackendError(f"{self.name}: {self.base_url} returned no choices")
        choice = reply.choices[0]
        text = (choice.message.content or "").strip()
        tokens: list[TokenLogprob] = []
        extra: dict = {}
        content = getattr(choice.logprobs, "content", None) if choice.logprobs else None
        for step, item in enumerate(content or []):
            top = tuple((alt.token, float(alt.logprob)) for alt in (item.top_logprobs or []))
            tokens.append(TokenLogprob(token=item.token, logprob=float(item.logprob), top=top))
            if step == 0 and first_token_candidates:
                # Only what the server returned among its top-k; absent candidates are below them.
                extra["first_token_logprobs"] = {
                    word: max((lp for tok, lp in top if word.lower().startswith(tok.strip().lower()) and tok.strip()),
                              default=None)
                    for word in first_token_candidates
                }
        usage = reply.usage
        token_usage = TokenUsage(usage.prompt_tokens, usage.completion_tokens) if usage else TokenUsage(
            sum(self.count_tokens(m.content) for m in messages), len(tokens))
        return Generation(text=text, tokens=tuple(tokens), usage=token_usage, model=self.name, latency_ms=latency_ms,
                          finish_reason=choice.finish_reason or "stop", extra=extra)
