"""A persistent generation cache: (model, prompt, parameters) -> Generation, in SQLite. Wrapping
the engine's models with it makes re-runs, resumed runs and threshold sweeps free: a cached call
returns the original generation, including the latency it took when it was computed.

Two deterministic computations that dominate a warm re-score are kept beside the generations:
token counts (long-context windows count dozens of candidate windows per answer, ~1 ms each) and
per-answer metric scores (Ragas takes seconds to import and ~20 ms per ROUGE call). With both warm,
a re-score imports neither transformers nor ragas."""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
from dataclasses import asdict
from pathlib import Path
from typing import Sequence

from adaptive_rag.models.lm import Generation, LanguageModel, Message, TokenLogprob
from adaptive_rag.usage import TokenUsage


class GenerationCache:
    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(str(path), check_same_thread=False, timeout=30.0)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")  # a cache: a power cut may lose the last rows, never corrupt
        for table in ("generations", "scores"):
            self._conn.execute(f"CREATE TABLE IF NOT EXISTS {table} (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        self._conn.execute("CREATE TABLE IF NOT EXISTS token_counts (key TEXT PRIMARY KEY, n INTEGER NOT NULL)")
        self._lock = threading.Lock()
        self.hits = self.misses = 0
        self._counts: dict[str, int] | None = None
        self._new_counts: dict[str, int] = {}

    def token_count(self, model: str, text: str, count) -> int:
        """`count(text)` memoised per (model, text); new counts are written in batches."""
        key = hashlib.sha1(f"{model}\0{text}".encode()).hexdigest()
        with self._lock:
            if self._counts is None:
                self._counts = dict(self._conn.execute("SELECT key, n FROM token_counts"))
            found = self._counts.get(key)
        if found is not None:
            return found
        n = count(text)
        with self._lock:
            self._counts[key] = self._new_counts[key] = n
            full = len(self._new_counts) >= 1000
        if full:
            self.flush()
        return n

    def flush(self) -> None:
        with self._lock, self._conn:
            self._conn.executemany("INSERT OR REPLACE INTO token_counts VALUES (?, ?)", self._new_counts.items())
            self._new_counts.clear()

    def get_score(self, key: str) -> dict | None:
        with self._lock:
            row = self._conn.execute("SELECT value FROM scores WHERE key = ?", (key,)).fetchone()
        return None if row is None else json.loads(row[0])

    def put_score(self, key: str, value: dict) -> None:
        with self._lock, self._conn:
            self._conn.execute("INSERT OR REPLACE INTO scores VALUES (?, ?)", (key, json.dumps(value)))

    @staticmethod
    def key(model: str, messages: Sequence[Message], max_new_tokens: int, candidates: Sequence[str]) -> str:
        payload = json.dumps([model, [[m.role, m.content] for m in messages], max_new_tokens, list(candidates)])
        return hashlib.sha256(payload.encode()).hexdigest()

    def get(self, key: str) -> Generation | None:
        with self._lock:
            row = self._conn.execute("SELECT value FROM generations WHERE key = ?", (key,)).fetchone()
        if row is None:
            return None
        data = json.loads(row[0])
        return Generation(text=data["text"], usage=TokenUsage(**data["usage"]), model=data["model"],
                          latency_ms=data["latency_ms"], finish_reason=data["finish_reason"], extra=data["extra"],
                          tokens=tuple(TokenLogprob(t["token"], t["logprob"], tuple(map(tuple, t["top"]))) for t in data["tokens"]))

    def put(self, key: str, gen: Generation) -> None:
        with self._lock, self._conn:
            self._conn.execute("INSERT OR REPLACE INTO generations VALUES (?, ?)", (key, json.dumps(asdict(gen))))


class CachedLM(LanguageModel):
    """`inner` behind the cache. Generations are keyed by the model's identity (name and engine,
    e.g. "qwen2.5-coder-0.5b|llamacpp Q4_K_M"): an answer from one engine is never served as
    another's. Token counts are keyed by name (every engine of a model shares its tokenizer)."""

    def __init__(self, inner: LanguageModel, cache: GenerationCache):
        self.inner = inner
        self.cache = cache
        self.name = inner.name
        self.context_window = inner.context_window
        self.engine = inner.engine

    def describe(self) -> dict:
        return self.inner.describe()

    @property
    def label(self) -> str:
        return self.inner.label

    @property
    def probe_signals(self) -> tuple[str, ...]:
        return self.inner.probe_signals

    @property
    def answer_probe(self):
        return self.inner.answer_probe

    def load(self) -> None:
        self.inner.load()

    def count_tokens(self, text: str) -> int:
        return self.cache.token_count(self.name, text, self.inner.count_tokens)

    def _cached(self, key: str, compute) -> Generation:
        found = self.cache.get(key)
        if found is not None:
            self.cache.hits += 1
            return found
        self.cache.misses += 1
        gen = compute()
        self.cache.put(key, gen)
        return gen

    def sample(self, messages: Sequence[Message], max_new_tokens: int = 32, temperature: float = 0.7,
               seed: int = 0) -> Generation:
        key = self.cache.key(f"{self.inner.identity}|sample t={temperature} seed={seed}", messages, max_new_tokens, ())
        return self._cached(key, lambda: self.inner.sample(messages, max_new_tokens, temperature, seed))

    def generate(self, messages: Sequence[Message], max_new_tokens: int = 32,
                 first_token_candidates: Sequence[str] = ()) -> Generation:
        key = self.cache.key(self.inner.identity, messages, max_new_tokens, first_token_candidates)
        return self._cached(key, lambda: self.inner.generate(messages, max_new_tokens, first_token_candidates))
