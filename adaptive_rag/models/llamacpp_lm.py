"""The llama.cpp engine: llama.cpp's HTTP server running inside this process (the prebuilt
`xllamacpp` wheel, no compiling), on a free loopback port, talked to by the OpenAI-compatible
client. Started on the first generation or token count, or at `load()`.

Why this engine: llama.cpp's quantized CPU kernels do not depend on native bf16, it decodes several
requests together in parallel slots (continuous batching) instead of one at a time behind a lock,
and it keeps each slot's KV cache, so a second prompt that shares a prefix with an earlier one (a
verification, an escalation, the refusal probe below) pays only for its new tokens.

Settings: a KV cache of `context_window` tokens split into one stream per slot (`parallel` slots;
a request may use context_window / parallel tokens: with one unified cache every token attended
over all slots' cells, which made 8 concurrent RAG requests 0.72x as fast as 8 in a row),
threads = physical cores (`cpu.py`) for prompt processing and decoding.
This class hands out the slots itself (`SlotPool`): a request holds one slot for its generation
and its refusal probe, so the probe always finds the prompt in that slot's cache (left to the
server, a queued request could take the slot in between and the probe would pay for the whole
prompt again), and a new request goes to the free slot whose last prompt shares the longest
prefix with it. Requests beyond the slots wait for one.

Log-probs are the model's own: per generated token its log-prob and the top-5 alternatives, all
computed by llama.cpp from the full softmax of the raw logits. The refusal word's first-token
log-prob is read even when that token is outside the top 5: a second request with the same
messages forces that token with `logit_bias` (a sampler step, which leaves the raw logits alone)
and `max_tokens=1`; the server reports the forced token's log-prob under the unbiased
distribution. With the prompt cache that request re-evaluates one token. If the server returns a
different token, the value is reported as None, never guessed. Its cost is recorded in the
generation's `extra` (`refusal_probe_ms`, `refusal_probe_new_tokens`), not in the answer's usage.
"""

from __future__ import annotations

import dataclasses
import functools
import socket
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from adaptive_rag.errors import ConfigError
from adaptive_rag.models.lm import BackendError, Message
from adaptive_rag.models.openai_lm import OpenAICompatibleLM, cached_tokens

if TYPE_CHECKING:  # pragma: no cover
    from adaptive_rag.models.catalog import ModelSpec

FORCE_BIAS = 100.0  # logit bias that makes the probed token the greedy choice
START_TIMEOUT_S = 300.0
REQUEST_TIMEOUT_S = 900.0  # local CPU generation: a long-context prompt queued behind others takes minutes


def free_loopback_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@functools.lru_cache(maxsize=16)
def gguf_quantization(path: str) -> str | None:
    """The GGUF's file type (e.g. "Q4_K_M"), read from its header; None if unreadable."""
    try:
        from gguf import GGUFReader, LlamaFileType

        field = GGUFReader(path).get_field("general.file_type")
        if field is None:
            return None
        name = LlamaFileType(int(field.contents())).name
        return name.removeprefix("MOSTLY_")
    except Exception:  # noqa: BLE001 - a description only; the engine itself reports real load errors
        return None


class SlotPool:
    """The server's parallel slots, handed out one per request; `acquire` picks, among the free
    slots, the one whose last prompt shares the longest prefix with `prompt` (its KV cache)."""

    def __init__(self, n: int):
        self._last = {slot: "" for slot in range(n)}
        self._free = set(self._last)
        self._cond = threading.Condition()

    @staticmethod
    def _shared(a: str, b: str) -> int:
        """Length of the common prefix (binary search over slice comparisons, done in C)."""
        lo, hi = 0, min(len(a), len(b))
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if a[:mid] == b[:mid]:
                lo = mid
            else:
                hi = mid - 1
        return lo

    def acquire(self, prompt: str) -> int:
        with self._cond:
            self._cond.wait_for(lambda: self._free)
            slot = max(sorted(self._free), key=lambda s: self._shared(self._last[s], prompt))
            self._free.discard(slot)
            self._last[slot] = prompt
            return slot

    def release(self, slot: int) -> None:
        with self._cond:
            self._free.add(slot)
            self._cond.notify()


class LlamaCppLM(OpenAICompatibleLM):
    engine = "llamacpp"
    spec_fields = frozenset({"pull", "path", "threads", "parallel"})
    streams_for_control = True  # a served request streams, so a cancel stops its generation between tokens

    def __init__(self, name: str, gguf: Path, context_window: int, parallel: int = 4, threads: int | None = None,
                 unified_kv: bool = False):
        # the KV cache holds `context_window` tokens in all; split, each slot (request) gets its share
        per_request = context_window if unified_kv else context_window // parallel
        super().__init__(name, "", name, per_request, timeout_s=REQUEST_TIMEOUT_S, max_retries=0)
        self.total_context, self.unified_kv = context_window, unified_kv
        from adaptive_rag.models.cpu import cpu_info

        self.gguf = Path(gguf)
        if not self.gguf.is_file():
            raise ConfigError(f"model {name!r}: GGUF file {self.gguf} not found (run `arag models pull`)")
        self.parallel = parallel
        self.threads = threads or cpu_info().physical_cores
        self._server = None
        self._start_lock = threading.Lock()
        self._token_ids: dict[str, int] = {}
        self._http = None
        self.slots = SlotPool(parallel)

    @classmethod
    def check_spec(cls, name: str, spec: "ModelSpec") -> None:
        if spec.path and not spec.path.endswith(".gguf"):
            raise ConfigError(f"model {name!r}: the llamacpp engine reads GGUF files, not {spec.path} "
                              "(use backend \"transformers\" for a Hugging Face directory)")
        if not (spec.path or spec.pull):
            raise ConfigError(f"model {name!r} needs a `path` (GGUF file) or a `pull` name")

    @classmethod
    def from_spec(cls, name: str, spec: "ModelSpec", models_dir: Path) -> "LlamaCppLM":
        from adaptive_rag.models.pull import local_model_path

        return cls(name, local_model_path(name, spec.path, spec.pull, models_dir), spec.context_window,
                   spec.parallel, spec.threads)

    def describe(self) -> dict:
        return {"engine": self.engine, "quantization": gguf_quantization(str(self.gguf)), "threads": self.threads,
                "slots": self.parallel, "file": str(self.gguf)}

    # -- the in-process server ------------------------------------------------------------------

    def load(self) -> None:
        with self._start_lock:
            if self._server is None:
                self._start()

    def _start(self) -> None:
        try:
            import xllamacpp
        except ImportError as exc:  # pragma: no cover
            raise ConfigError("the llamacpp engine needs `pip install xllamacpp`") from exc
        import httpx

        params = xllamacpp.CommonParams()
        params.model.path = str(self.gguf)
        params.n_ctx = self.total_context
        params.n_parallel = self.parallel
        params.kv_unified = self.unified_kv
        params.cache_prompt = True
        params.cpuparams.n_threads = self.threads
        params.cpuparams_batch.n_threads = self.threads
        params.hostnames = ["127.0.0.1"]
        params.port = free_loopback_port()
        params.verbosity = -1  # llama.cpp logs every slot event otherwise
        params.warmup = False
        server = xllamacpp.Server(params)
        url = f"http://127.0.0.1:{params.port}"
        http = httpx.Client(base_url=url, timeout=REQUEST_TIMEOUT_S)
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            try:
                if http.get("/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                del server
                raise BackendError(f"{self.name}: llama.cpp server did not become healthy in {START_TIMEOUT_S:.0f} s")
            time.sleep(0.05)
        self._server, self._http = server, http
        self._connect(f"{url}/v1")

    def close(self) -> None:
        with self._start_lock:
            if self._http is not None:
                self._http.close()
            self._server = self._http = self._client = None

    def _ready(self):
        if self._server is None:
            self.load()
        return self._client

    # -- tokens ---------------------------------------------------------------------------------

    def _tokenize(self, text: str) -> list[int]:
        self._ready()
        try:
            reply = self._http.post("/tokenize", json={"content": text, "add_special": False})
            reply.raise_for_status()
        except Exception as exc:  # noqa: BLE001 - httpx errors of any kind
            raise BackendError(f"{self.name}: tokenizing failed ({exc})", retryable=True) from exc
        return reply.json()["tokens"]

    def count_tokens(self, text: str) -> int:
        # long-context windows count the same whole documents again and again
        return self._count_cached(text) if len(text) > 2000 else len(self._tokenize(text))

    @functools.lru_cache(maxsize=512)
    def _count_cached(self, text: str) -> int:
        return len(self._tokenize(text))

    def first_token_id(self, word: str) -> int:
        if word not in self._token_ids:
            ids = self._tokenize(word)
            if not ids:
                raise ConfigError(f"{word!r} has no tokens")
            self._token_ids[word] = ids[0]
        return self._token_ids[word]

    def forced_first_token_logprobs(self, messages: Sequence[Message], words: Sequence[str],
                                    slot: int | None = None) -> tuple[dict[str, float | None], int]:
        """Each word's first-token log-prob at the answer's first position, whatever its rank, and
        the prompt tokens these requests evaluated anew (the rest came from the prompt cache)."""
        out: dict[str, float | None] = {}
        new_tokens = 0
        pinned = {} if slot is None else {"extra_body": {"id_slot": slot}}
        for word in words:
            token_id = self.first_token_id(word)
            reply = self._create(messages, 1, logit_bias={str(token_id): FORCE_BIAS}, **pinned)
            content = reply.choices[0].logprobs.content if reply.choices[0].logprobs else None
            item = content[0] if content else None
            # the token id is llama.cpp's extension of the OpenAI reply
            got = (getattr(item, "id", None) or (item.model_extra or {}).get("id")) if item is not None else None
            out[word] = float(item.logprob) if item is not None and got == token_id else None
            new_tokens += (reply.usage.prompt_tokens - cached_tokens(reply.usage)) if reply.usage else 0
        return out, new_tokens

    def generate(self, messages: Sequence[Message], max_new_tokens: int = 32,
                 first_token_candidates: Sequence[str] = (), **sampling):
        self._ready()
        waited = time.perf_counter()
        slot = self.slots.acquire("\x1e".join(f"{m.role}\x1f{m.content}" for m in messages))
        wait_ms = (time.perf_counter() - waited) * 1e3
        try:
            gen = super().generate(messages, max_new_tokens, extra_body={"id_slot": slot}, **sampling)
            if gen.finish_reason == "stop" and gen.tokens and gen.tokens[-1].token == "":
                # the end-of-turn token: the other engines leave it out of the answer's log-probs
                gen = dataclasses.replace(gen, tokens=gen.tokens[:-1])
            gen.extra["slot_wait_ms"] = round(wait_ms, 1)
            if first_token_candidates:
                started = time.perf_counter()
                values, new_tokens = self.forced_first_token_logprobs(messages, first_token_candidates, slot)
                gen.extra["first_token_logprobs"] = values
                gen.extra["refusal_probe_ms"] = round((time.perf_counter() - started) * 1e3, 1)
                gen.extra["refusal_probe_new_tokens"] = new_tokens
        finally:
            self.slots.release(slot)
        return gen
