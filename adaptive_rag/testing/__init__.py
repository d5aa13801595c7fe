"""Deterministic fakes that subclass the real interfaces, and `make_engine`, which wires a query
engine from them. The tests and the benchmarks (python -m eval.bench ui / load) use them; they are
installed with the package so the benchmarks work outside a source checkout. Nothing here
downloads or loads a model.

Beside them: `fake_server` (the real server loop over these fakes, in its own process:
`python -m adaptive_rag.testing.fake_server`) and `postgres` (a private PostgreSQL server from
Debian's postgresql package, for the decision log's tests and the replica load benchmark)."""

from __future__ import annotations

import hashlib
import re
import time
from typing import Sequence

import numpy as np

from adaptive_rag.models.embedder import DenseEmbedder

_WORD = re.compile(r"[a-z0-9]+")


class FakeEmbedder(DenseEmbedder):
    """Hashed bag of words, L2-normalised: texts sharing words are close. No model, no threads."""

    name = "fake-bow"
    dim = 64
    max_tokens = 10_000

    def __init__(self) -> None:
        self.documents_embedded = 0

    def _vector(self, text: str) -> np.ndarray:
        vec = np.zeros(self.dim, dtype=np.float32)
        for word in _WORD.findall(text.lower()):
            bucket = int.from_bytes(hashlib.blake2b(word.encode(), digest_size=4).digest(), "little") % self.dim
            vec[bucket] += 1.0
        norm = float(np.linalg.norm(vec))
        if norm == 0.0:
            vec[0] = 1.0
            norm = 1.0
        return vec / norm

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        self.documents_embedded += len(texts)
        return np.stack([self._vector(t) for t in texts]) if texts else np.zeros((0, self.dim), np.float32)

    def embed_query(self, text: str) -> np.ndarray:
        return self._vector(text)

    def count_tokens(self, text: str) -> int:
        return len(text.split())


from adaptive_rag.models.lm import BackendError, Generation, LanguageModel, Message, TokenLogprob  # noqa: E402
from adaptive_rag.usage import TokenUsage  # noqa: E402


class FakeLM(LanguageModel):
    """Deterministic reader. Closed-book: answers `closed_book_answer` with per-token log-prob
    `closed_book_logprob`. With a context: answers `facts[question keyword]` when the context holds
    that answer (log-prob -0.1, refusal -6.0), else "unanswerable" (refusal -0.05); with
    `misses_context`, "unsure guess" (log-prob -1.2) whatever the context. Asked P(True), or asked
    to judge an answer (query/judge.py), it says "Yes" (log-prob -0.1, "No" -2.5) when the answer
    is one of its facts, else the reverse.
    `sample` returns `sample_answers[seed]`, or the greedy answer."""

    def __init__(self, name="fake-lm", facts=None, closed_book_answer="I think Paris", closed_book_logprob=-1.5,
                 context_window=4096, fail_with: BackendError | None = None, sample_answers=None,
                 misses_context=False, word_delay_s=0.0):
        self.word_delay_s = word_delay_s  # a slow model: seconds per generated word
        self.sample_answers = sample_answers or {}  # seed -> the sampled answer (default: the greedy one)
        self.misses_context = misses_context  # a weak model: "unsure guess" whatever the context says
        self.name = name
        self.context_window = context_window
        self.facts = facts or {}
        self.closed_book_answer = closed_book_answer
        self.closed_book_logprob = closed_book_logprob
        self.fail_with = fail_with
        self.calls: list[list[Message]] = []

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    def _gen(self, text, logprob, refusal, prompt_tokens):
        words = text.split()
        tokens = tuple(TokenLogprob(w, logprob, ((w, logprob), ("other", logprob - 2.0))) for w in words)
        return Generation(text=text, tokens=tokens, usage=TokenUsage(prompt_tokens, len(words)), model=self.name,
                          extra={"first_token_logprobs": {"unanswerable": refusal}})

    def sample(self, messages, max_new_tokens=32, temperature=0.7, seed=0):
        greedy = self.generate(messages, max_new_tokens)
        text = self.sample_answers.get(seed, greedy.text)
        return self._gen(text, -0.5, -4.0, greedy.usage.input_tokens)

    def generate(self, messages, max_new_tokens=32, first_token_candidates=()):
        """Like the transformers engine under a request's control (adaptive_rag/models/control.py):
        "decodes" word by word (`word_delay_s` apart), hands each word to `on_text` while the
        final answer streams, and stops between words when the request is cancelled or late."""
        from adaptive_rag.models.control import current

        gen = self._answer(messages)
        control = current()
        if control is None:
            return gen
        control.raise_if_stopped("before its next model call")
        for i, word in enumerate(gen.text.split()):
            if self.word_delay_s:
                time.sleep(self.word_delay_s)
            if control.should_stop():
                control.raise_if_stopped("while generating")
            if control.on_text is not None:
                control.on_text(word if i == 0 else " " + word)
        return gen

    def _answer(self, messages):
        from adaptive_rag.query.verify import NO, P_TRUE_QUESTION, YES

        self.calls.append(list(messages))
        if self.fail_with is not None:
            raise self.fail_with
        prompt = messages[-1].content
        prompt_tokens = sum(self.count_tokens(m.content) for m in messages)
        from adaptive_rag.query.judge import QUESTION as JUDGE_QUESTION

        if prompt == P_TRUE_QUESTION or prompt.endswith(JUDGE_QUESTION):
            # P(True), or judging an answer: "Yes" is likely when the answer is one of its facts
            answer = messages[-2].content if prompt == P_TRUE_QUESTION else \
                prompt.rsplit("\nAnswer: ", 1)[1].rsplit("\n\n" + JUDGE_QUESTION, 1)[0]
            right = answer in self.facts.values()
            gen = self._gen(YES if right else NO, -0.1, -6.0, prompt_tokens)
            return Generation(gen.text, gen.tokens, gen.usage, gen.model,
                              extra={"first_token_logprobs": {YES: -0.1 if right else -2.5, NO: -2.5 if right else -0.1}})
        if "Context:" not in prompt:
            return self._gen(self.closed_book_answer, self.closed_book_logprob, -4.0, prompt_tokens)
        question = prompt.rsplit("Question:", 1)[1].lower()
        context = prompt.split("Context:", 1)[1].rsplit("Answer the question", 1)[0]
        if self.misses_context:
            return self._gen("unsure guess", -1.2, -3.0, prompt_tokens)
        for keyword, answer in self.facts.items():
            if keyword in question and answer in context:
                return self._gen(answer, -0.1, -6.0, prompt_tokens)
        return self._gen("unanswerable", -0.05, -0.05, prompt_tokens)


def make_engine(settings, store, embedder, models, decision_store=None, routers=None, prices=None, **config):
    """A QueryEngine over `store` with `embedder`: `models` is a Models panel, or one language
    model that is both reader and long-context model (priced by `prices`, {name: Prices}).
    `routers`: slot -> Router; `config`: QueryConfig fields (top_k=1, max_new_tokens=..., ...)."""
    from adaptive_rag.models.panel import Models
    from adaptive_rag.query.engine import QueryConfig, QueryEngine
    from adaptive_rag.retrieve import Retriever

    if not isinstance(models, Models):
        models = Models(models, models, prices or {})
    return QueryEngine(Retriever(settings, store, embedder), models, decision_store, QueryConfig(**config), routers)
