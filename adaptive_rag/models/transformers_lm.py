"""The transformers engine: torch on the CPU, loading a GGUF file (converted once to a
safetensors directory in the model cache, per dtype: the first GGUF load dequantizes for ~15 s,
later loads take ~1 s) or any local Hugging Face model directory. Greedy decoding with the model's
chat template; per-step log-probs from the scores of `generate` (log-softmax over the vocabulary),
with the top-5 alternatives and, on request, the log-prob of given words' first tokens at the
first step.

The dtype is the CPU's: bfloat16 only where the CPU computes it natively, float32 otherwise
(`cpu.torch_dtype_for`; on an AVX2-only CPU bf16 ran ~50x slower), unless the catalog entry sets
one. One generation runs at a time (a lock): torch already uses every core for one request.
Two processes converting the same GGUF take turns on a file lock; the second finds it done."""

from __future__ import annotations

import functools
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from adaptive_rag.errors import ConfigError
from adaptive_rag.models.control import current as current_control
from adaptive_rag.models.filelock import exclusive, lock_path
from adaptive_rag.models.lm import Generation, LanguageModel, Message, TokenLogprob
from adaptive_rag.usage import TokenUsage

if TYPE_CHECKING:  # pragma: no cover
    from adaptive_rag.models.catalog import ModelSpec

TOP_K = 5


def _converted_dir(gguf: Path, cache: Path, dtype_name: str) -> Path:
    return cache / f"{gguf.stem}-{dtype_name}-hf"


def _transformers():
    try:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer
        from transformers.utils import logging as hf_logging
    except ImportError as exc:  # pragma: no cover
        raise ConfigError("the local backend needs torch and transformers") from exc
    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
    return torch, AutoModelForCausalLM, AutoTokenizer


def _model_dir(path: Path, cache: Path, dtype_name: str) -> Path:
    """A Hugging Face model directory: `path` itself, or a GGUF file's conversion, made on first use."""
    if not (path.is_file() and path.suffix == ".gguf"):
        return path
    converted = _converted_dir(path, cache, dtype_name)
    if (converted / "config.json").is_file():
        return converted
    with exclusive(lock_path(converted)):
        if not (converted / "config.json").is_file():  # another process may have finished it meanwhile
            _convert(path, converted, dtype_name)
    return converted


def _convert(path: Path, converted: Path, dtype_name: str) -> None:
    import shutil

    torch, AutoModelForCausalLM, AutoTokenizer = _transformers()
    model = AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name, dtype=getattr(torch, dtype_name))
    tokenizer = AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
    # Saved as plain weights: drop the GGUF quantizer so the copy loads without `gguf`.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    tmp = converted.with_name(converted.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)  # left by a conversion that was killed
    model.save_pretrained(str(tmp))
    tokenizer.save_pretrained(str(tmp))
    shutil.rmtree(converted, ignore_errors=True)  # a directory without config.json is incomplete
    tmp.replace(converted)


def _load_tokenizer(path: Path, cache: Path, dtype_name: str):
    _, _, AutoTokenizer = _transformers()
    return AutoTokenizer.from_pretrained(str(_model_dir(path, cache, dtype_name)))


def _load_model(path: Path, cache: Path, dtype_name: str):
    torch, AutoModelForCausalLM, _ = _transformers()
    directory = _model_dir(path, cache, dtype_name)
    return AutoModelForCausalLM.from_pretrained(str(directory), dtype=getattr(torch, dtype_name)).eval()


def _controlled(control, tokenizer) -> dict:
    """generate() arguments that stop between tokens when the request's control says so (client
    gone, deadline passed) and hand each decoded piece to `control.on_text` when it streams."""
    from transformers import StoppingCriteria, StoppingCriteriaList, TextStreamer

    class StopWhenAsked(StoppingCriteria):
        def __call__(self, input_ids, scores, **kwargs):
            return control.should_stop()

    class PiecesToControl(TextStreamer):
        def on_finalized_text(self, text: str, stream_end: bool = False) -> None:
            if text and control.on_text is not None:
                control.on_text(text)

    extra: dict = {"stopping_criteria": StoppingCriteriaList([StopWhenAsked()])}
    if control.on_text is not None:
        extra["streamer"] = PiecesToControl(tokenizer, skip_prompt=True, skip_special_tokens=True)
    return extra


def _pooled(hidden_states, n_text_tokens: int, layers) -> dict:
    """The probe states of one greedy generation, from `generate`'s own hidden states (no second
    pass), as {"prompt": {layer: vector}, "answer": {layer: vector} or None}: step 0 holds the
    prompt's states (the last position is the pre-generation state); step s >= 1 holds the state of
    the token generated at step s-1, so the answer's text tokens are steps 1..n and "answer" is
    their mean (an answer cut at max_new_tokens misses its last token, which no step fed)."""
    import torch

    prompt = {layer: hidden_states[0][layer][0, -1].float().numpy() for layer in layers}
    steps = hidden_states[1:1 + n_text_tokens]
    answer = {layer: torch.stack([step[layer][0, -1] for step in steps]).float().mean(dim=0).numpy()
              for layer in layers} if steps else None
    return {"prompt": prompt, "answer": answer}


class TransformersLM(LanguageModel):
    engine = "transformers"
    spec_fields = frozenset({"pull", "path", "dtype", "threads"})

    def __init__(self, name: str, path: Path, cache_dir: Path, context_window: int, dtype: str = "auto",
                 threads: int | None = None):
        from adaptive_rag.models.cpu import cpu_info, torch_dtype_for

        self.name = name
        self.context_window = context_window
        dtype = torch_dtype_for(cpu_info().flags, dtype)
        self._path, self._cache, self._dtype, self._threads = Path(path), cache_dir, dtype, threads
        if not self._path.exists():
            raise ConfigError(f"model file {self._path} not found (run `arag models pull`)")
        # Nothing heavy loads here. The tokenizer loads on the first count or generation (importing
        # transformers takes seconds, and a re-score from the caches never needs it); the weights
        # load on the first generation, or at `load()`.
        self._model = self._tokenizer_obj = None
        self._tokenizer_lock = threading.Lock()
        self._lock = threading.Lock()  # one forward pass at a time: the CPU is the bottleneck anyway
        self._probes: dict[str, object] = {}  # kind -> AnswerProbe read from every greedy generation

    @classmethod
    def check_spec(cls, name: str, spec: "ModelSpec") -> None:
        if not (spec.path or spec.pull):
            raise ConfigError(f"model {name!r} needs a `path` (GGUF file or Hugging Face directory) or a `pull` name")

    @classmethod
    def from_spec(cls, name: str, spec: "ModelSpec", models_dir: Path) -> "TransformersLM":
        from adaptive_rag.models.pull import local_model_path

        return cls(name, local_model_path(name, spec.path, spec.pull, models_dir), models_dir, spec.context_window,
                   spec.dtype, spec.threads)

    @property
    def dtype(self) -> str:
        return self._dtype

    @property
    def model_file(self) -> Path:
        """The GGUF file or Hugging Face directory the weights come from."""
        return self._path

    def describe(self) -> dict:
        return {"engine": self.engine, "dtype": self._dtype, "threads": self._threads or "torch default",
                "file": str(self._path)}

    def attach_probe(self, probe) -> None:
        """Read `probe` from the hidden states of every greedy generation (one probe per kind)."""
        if probe.kind in self._probes:
            raise ConfigError(f"model {self.name!r} already serves a {probe.kind} probe; attach one per kind")
        self._probes[probe.kind] = probe

    @property
    def probe_signals(self) -> tuple[str, ...]:
        return tuple(p.signal for p in self._probes.values())

    @property
    def answer_probe(self):
        return self._probes.get("answer")

    @property
    def identity(self) -> str:
        """Model, engine and the attached probes: a cached answer carries its probes' readings."""
        base = super().identity
        if not self._probes:
            return base
        return base + "|probes " + ",".join(f"{k}:{p.fingerprint}" for k, p in sorted(self._probes.items()))

    def _read_probes(self, pooled: dict) -> dict:
        """Each attached probe's P(wrong) from the generation's own pooled states (`_pooled`)."""
        import numpy as np

        started = time.perf_counter()
        out: dict = {}
        for kind, probe in self._probes.items():
            rows = pooled[kind]
            out[probe.signal] = None if rows is None else probe.p_wrong(np.asarray(rows[probe.layer], dtype=np.float64))
        out["probe_ms"] = (time.perf_counter() - started) * 1e3
        return out

    @property
    def _tokenizer(self):
        with self._tokenizer_lock:
            if self._tokenizer_obj is None:
                self._tokenizer_obj = _load_tokenizer(self._path, self._cache, self._dtype)
        return self._tokenizer_obj

    def load(self) -> None:
        """Load the tokenizer and the weights now (the server does at start, so no request waits)."""
        self._tokenizer
        self._ensure_model()

    def _ensure_model(self):
        with self._lock:
            if self._model is None:
                if self._threads:
                    import torch

                    torch.set_num_threads(self._threads)
                self._model = _load_model(self._path, self._cache, self._dtype)
        return self._model

    def count_tokens(self, text: str) -> int:
        # long-context windows count the same whole documents again and again (tens of ms each)
        return self._count_cached(text) if len(text) > 2000 else self._count(text)

    def _count(self, text: str) -> int:
        return len(self._tokenizer(text, add_special_tokens=False)["input_ids"])

    @functools.lru_cache(maxsize=512)
    def _count_cached(self, text: str) -> int:
        return self._count(text)

    def _first_token_id(self, word: str) -> int:
        ids = self._tokenizer(word, add_special_tokens=False)["input_ids"]
        return ids[0]

    @property
    def num_layers(self) -> int:
        """Transformer blocks; hidden states are numbered 0 (the embeddings) to num_layers."""
        return int(self._ensure_model().config.num_hidden_layers)

    def hidden_states(self, messages: Sequence[Message], answer: str = "",
                      layers: Sequence[int] | None = None) -> dict[str, "object"]:
        """The model's internal state for an answer probe, from one forward pass over the chat
        prompt followed by `answer`'s tokens:
        - "prompt": the hidden state at the prompt's last token (the generation prompt), one row per
          layer in `layers`: what the model holds just before it answers (a pre-generation probe);
        - "answer": the mean of the hidden states over the answer's tokens, per layer (None when
          the answer is empty): a post-generation probe.
        Returns float32 numpy arrays of shape (len(layers), hidden size), plus "prompt_tokens" and
        "answer_tokens" and "latency_ms" (the pass's wall time, the probe's cost when it runs
        beside an answer). `layers` default: every hidden state, 0 (embeddings) to num_layers."""
        import numpy as np
        import torch

        chat = [{"role": m.role, "content": m.content} for m in messages]
        prompt_ids = self._tokenizer.apply_chat_template(chat, add_generation_prompt=True, return_tensors="pt",
                                                         return_dict=True)["input_ids"]
        answer_ids = self._tokenizer(answer, add_special_tokens=False, return_tensors="pt")["input_ids"] if answer else None
        ids = prompt_ids if answer_ids is None else torch.cat([prompt_ids, answer_ids], dim=1)
        model = self._ensure_model()
        chosen = list(range(model.config.num_hidden_layers + 1)) if layers is None else list(layers)
        n_prompt = int(prompt_ids.shape[1])
        started = time.perf_counter()
        with self._lock, torch.inference_mode():
            out = model(ids, attention_mask=torch.ones_like(ids), output_hidden_states=True, use_cache=False)
        states = [out.hidden_states[i][0].float() for i in chosen]
        prompt = np.stack([s[n_prompt - 1].numpy() for s in states])
        answer_mean = np.stack([s[n_prompt:].mean(dim=0).numpy() for s in states]) if answer_ids is not None else None
        return {"prompt": prompt, "answer": answer_mean, "layers": chosen, "prompt_tokens": n_prompt,
                "answer_tokens": 0 if answer_ids is None else int(answer_ids.shape[1]),
                "latency_ms": (time.perf_counter() - started) * 1e3}

    def sample(self, messages: Sequence[Message], max_new_tokens: int = 32, temperature: float = 0.7,
               seed: int = 0) -> Generation:
        return self.generate(messages, max_new_tokens, sampling=(temperature, seed))

    def generate(self, messages: Sequence[Message], max_new_tokens: int = 32,
                 first_token_candidates: Sequence[str] = (), sampling: tuple[float, int] | None = None) -> Generation:
        """Greedy, or with `sampling` = (temperature, seed) a sampled answer whose log-probs are
        read from the raw logits (the model's own distribution, before temperature). A greedy
        generation carries the attached probes' readings in `extra`."""
        return self._generate(messages, max_new_tokens, first_token_candidates, sampling)[0]

    def generate_with_states(self, messages: Sequence[Message], layers: Sequence[int], max_new_tokens: int = 32,
                             first_token_candidates: Sequence[str] = ()) -> tuple[Generation, dict]:
        """A greedy generation and its probe states at `layers`, read from the same pass (what a
        probe attached to this engine reads): {"prompt": {layer: vector}, "answer": {layer:
        vector} or None}. eval/probe_labels.py trains probes on these."""
        return self._generate(messages, max_new_tokens, first_token_candidates, None, tuple(layers))

    def _generate(self, messages, max_new_tokens, first_token_candidates, sampling, layers=()) -> tuple[Generation, dict | None]:
        import torch

        chat = [{"role": m.role, "content": m.content} for m in messages]
        input_ids = self._tokenizer.apply_chat_template(chat, add_generation_prompt=True, return_tensors="pt",
                                                        return_dict=True)["input_ids"]
        prompt_tokens = int(input_ids.shape[1])
        if prompt_tokens + max_new_tokens > self.context_window:
            raise ConfigError(f"prompt of {prompt_tokens} tokens exceeds {self.name}'s context window of {self.context_window}")
        model = self._ensure_model()
        started = time.perf_counter()
        decoding = {"do_sample": False, "output_scores": True}
        probed = bool(self._probes) and sampling is None
        state_layers = sorted({*layers, *(p.layer for p in self._probes.values())}) if sampling is None else []
        if state_layers:
            decoding["output_hidden_states"] = True
        if sampling is not None:
            decoding = {"do_sample": True, "temperature": sampling[0], "top_k": 0, "top_p": 1.0, "output_logits": True}
        control = current_control()
        if control is not None:
            control.raise_if_stopped("before its next model call")
            decoding.update(_controlled(control, self._tokenizer))
        with self._lock, torch.inference_mode():
            if sampling is not None:
                torch.manual_seed(sampling[1])
            out = model.generate(
                input_ids, attention_mask=torch.ones_like(input_ids), max_new_tokens=max_new_tokens,
                return_dict_in_generate=True, **decoding,
                pad_token_id=self._tokenizer.pad_token_id or self._tokenizer.eos_token_id,
            )
        if control is not None:  # stopped between tokens: the request is over, not this answer
            control.raise_if_stopped("while generating")
        latency_ms = (time.perf_counter() - started) * 1e3
        new_ids = out.sequences[0, prompt_tokens:].tolist()
        tokens, extra = [], {}
        for step, (token_id, scores) in enumerate(zip(new_ids, out.logits if sampling is not None else out.scores)):
            logprobs = torch.log_softmax(scores[0].float(), dim=-1)
            if step == 0 and first_token_candidates:
                extra["first_token_logprobs"] = {
                    word: float(logprobs[self._first_token_id(word)]) for word in first_token_candidates
                }
            if token_id == self._tokenizer.eos_token_id:
                break
            top = torch.topk(logprobs, TOP_K)
            tokens.append(TokenLogprob(
                token=self._tokenizer.decode([token_id]), logprob=float(logprobs[token_id]),
                top=tuple((self._tokenizer.decode([i]), float(v)) for v, i in zip(top.values.tolist(), top.indices.tolist())),
            ))
        text = self._tokenizer.decode(new_ids, skip_special_tokens=True).strip()
        pooled = _pooled(out.hidden_states, len(tokens), state_layers) if state_layers else None
        if probed:
            extra.update(self._read_probes(pooled))
        finish = "length" if len(new_ids) >= max_new_tokens and (not new_ids or new_ids[-1] != self._tokenizer.eos_token_id) else "stop"
        gen = Generation(text=text, tokens=tuple(tokens), usage=TokenUsage(prompt_tokens, len(new_ids)),
                         model=self.name, latency_ms=latency_ms, finish_reason=finish, extra=extra)
        return gen, pooled
