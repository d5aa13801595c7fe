"""`python -m eval.bench query`: what the query path costs besides LLM generation, and how fast
the local readers are.

1. Overhead per query: the full engine (validation, query embedding, hybrid search, policy logic,
   decision record written to SQLite) with an instant LM that returns a fixed answer with
   log-probs, so everything measured is ours. Policies `always_rag` and `self_route` (which
   escalates, so it also builds the long-context window from stored documents). Target p50 <= 15 ms.
   Policy `gatekeeper_adaptive` adds the router: the dense-only and BM25-only searches kept as signals, the
   features and the gatekeeper classifier (a logistic regression over the default feature groups,
   384-d embedding included, fitted on these questions with seeded labels: its speed does not
   depend on what it learned). Router overhead target p50 <= 10 ms, and its ratio to always_rag.
2. Reader speed (`--reader NAME`, default the settings' reader; `--no-reader` skips): prompt
   tokens/s (a ~1,000-token prompt, 1 new token), decode tokens/s (32 new tokens), and wall time
   of a closed-book, a RAG and a long-context answer to one SQuAD question.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path
from typing import Any, Sequence

from eval.bench.common import (
    bench_settings, ingest_squad, load_questions, log, machine_info, models_dir_or_default, percentiles, settings_summary,
    squad_path,
)

OVERHEAD_TARGET_MS = 15.0
ROUTER_TARGET_MS = 10.0


def _instant_lm(answer: str, refuse: bool):
    from adaptive_rag.models.lm import Generation, LanguageModel, TokenLogprob
    from adaptive_rag.usage import TokenUsage

    class InstantLM(LanguageModel):
        """Answers at once: the benchmark instrument that leaves only our own overhead."""

        name, context_window = "instant", 32768

        def count_tokens(self, text: str) -> int:
            return max(1, len(text) // 4)

        def generate(self, messages: Sequence, max_new_tokens: int = 32, first_token_candidates=()) -> Generation:
            text = "unanswerable" if refuse else answer
            return Generation(text=text, tokens=(TokenLogprob(text, -0.1, ((text, -0.1), ("x", -3.0))),),
                              usage=TokenUsage(sum(self.count_tokens(m.content) for m in messages), 1), model=self.name,
                              extra={"first_token_logprobs": {"unanswerable": -0.1 if refuse else -6.0}})

    return InstantLM()


def _bench_gatekeeper(settings, store, embedder, questions):
    """A logistic-regression gatekeeper over the real features of these questions (seeded labels)."""
    import random

    from adaptive_rag.retrieve import Retriever
    from gatekeeper.artifact import LABELS
    from gatekeeper.features import router_inputs
    from gatekeeper.train import train

    retriever, rng = Retriever(settings, store, embedder), random.Random(0)
    rows = []
    for i, q in enumerate(questions):
        retrieval = retriever.search("squad-dev", q.text, k=settings.top_k, components=True)
        outcome = {"correct": rng.random() < 0.5, "f1": 0.0, "tokens": 1, "signals": {"mean_logprob": -rng.random()}}
        rows.append({"id": str(i), "collection": "squad-dev", "inputs": router_inputs(q.text, retrieval),
                     "outcomes": {"closed_book": outcome, "rag": outcome, "long_context": None}, "label": LABELS[i % 4]})
    return train(rows, "logreg", seed=0, embedder=embedder.name, folds=2)


def _overhead(settings, store, embedder, questions) -> dict[str, Any]:
    from adaptive_rag.decisions import SQLiteDecisionStore
    from adaptive_rag.models.panel import Models
    from adaptive_rag.testing import make_engine

    out = {}
    log_path = Path(settings.data_dir) / "decisions.sqlite"
    gatekeeper = _bench_gatekeeper(settings, store, embedder, questions)
    for policy, refuse in (("always_rag", False), ("self_route", True), ("gatekeeper_adaptive", False)):
        lm = _instant_lm("an answer", refuse)
        engine = make_engine(settings, store, embedder, Models(lm, lm, {}), SQLiteDecisionStore(log_path),
                             routers={"gatekeeper": gatekeeper})
        for q in questions[:10]:
            engine.answer("squad-dev", q.text, policy=policy)
        samples, stages = [], {"embed_ms": [], "search_ms": [], "write_and_policy_ms": [], "router_ms": []}
        for q in questions:
            t0 = time.perf_counter()
            d = engine.answer("squad-dev", q.text, policy=policy)
            total = (time.perf_counter() - t0) * 1e3
            samples.append(total)
            retrieve = d.stages[0].signals
            # the router's own cost: the two extra searches kept as signals, features + classifier
            router = retrieve.get("components_ms", 0.0) + sum(s.latency_ms for s in d.stages if s.name == "gatekeeper")
            stages["embed_ms"].append(retrieve["embed_ms"])
            stages["search_ms"].append(retrieve["search_ms"])
            stages["router_ms"].append(router)
            stages["write_and_policy_ms"].append(total - retrieve["embed_ms"] - retrieve["search_ms"] - retrieve["bm25_ms"]
                                                 - router)
        out[policy] = {"total": percentiles(samples), **{k: percentiles(v) for k, v in stages.items()}}
    return out


def _reader_speed(settings, store, embedder, question) -> dict[str, Any]:
    from adaptive_rag.decisions import SQLiteDecisionStore
    from adaptive_rag.models.catalog import load_lm, resolve
    from adaptive_rag.models.lm import Message
    from adaptive_rag.models.panel import Models
    from adaptive_rag.testing import make_engine

    name = settings.reader_model
    t0 = time.perf_counter()
    lm = load_lm(name, resolve(settings.catalog, name), settings.models_dir)
    load_s = time.perf_counter() - t0
    long_prompt = [Message("user", ("The river flows past the old city walls and the market square. " * 80) + "Summarise.")]
    lm.generate(long_prompt[:1], 1)  # warm-up
    prefill = lm.generate(long_prompt, 1)
    decode = lm.generate([Message("user", "Count from one to fifty in words, separated by commas.")], 32)
    engine = make_engine(settings, store, embedder, Models(lm, lm, {}), SQLiteDecisionStore(Path(settings.data_dir) / "r.sqlite"),
                         long_context_budget=4000)
    answers = {}
    for policy in ("closed_book", "always_rag", "always_lc"):
        d = engine.answer("squad-dev", question.text, policy=policy)
        answers[policy] = {"seconds": d.latency_ms / 1e3, "input_tokens": d.usage.input_tokens,
                           "output_tokens": d.usage.output_tokens, "answer": d.answer}
    return {
        "model": name, "load_s": load_s,
        "prompt_tokens_per_s": prefill.usage.input_tokens / (prefill.latency_ms / 1e3),
        "prompt_tokens": prefill.usage.input_tokens,
        "decode_tokens_per_s": decode.usage.output_tokens / (decode.latency_ms / 1e3),
        "decode_note": "includes the short prompt's prefill",
        "question": question.text, "gold": question.gold_key, "answers": answers,
    }


def run(args) -> dict[str, Any]:
    from adaptive_rag.models.embedder import load_embedder
    from adaptive_rag.store import open_store

    machine = machine_info()
    tmp = Path(tempfile.mkdtemp(prefix="arag-bench-query-"))
    store = None
    try:
        settings, _ = bench_settings(tmp, args.models_dir, args.quantize)
        if args.reader:
            settings = settings.model_copy(update={"reader_model": args.reader})
        settings = settings.model_copy(update={"model_cache_dir": models_dir_or_default(args.models_dir)})
        embedder = load_embedder(settings)
        store = open_store(settings)
        log("ingesting squad-dev")
        ingest_squad(settings, store, embedder)
        questions, _ = load_questions(squad_path(settings), "report", args.questions, args.seed)
        log(f"overhead: {len(questions)} questions x 3 policies")
        result = {"benchmark": "query", "overhead": _overhead(settings, store, embedder, questions),
                  "target_p50_ms": OVERHEAD_TARGET_MS, "router_target_p50_ms": ROUTER_TARGET_MS}
        if not args.no_reader:
            log(f"reader speed: {settings.reader_model}")
            result["reader"] = _reader_speed(settings, store, embedder, questions[0])
        return result | {"machine": machine, "settings": settings_summary(settings, embedder)}
    finally:
        if store is not None:
            store.close()
        shutil.rmtree(tmp, ignore_errors=True)


def format_result(r: dict[str, Any]) -> str:
    lines = ["== query overhead without LLM generation (instant LM), SQuAD dev collection"]
    for policy, parts in r["overhead"].items():
        total = parts["total"]
        met = "MET" if total["p50_ms"] <= r["target_p50_ms"] else "NOT MET"
        lines.append(f"  {policy:<11} total p50 {total['p50_ms']:6.2f} ms  p95 {total['p95_ms']:6.2f} ms  "
                     f"(target p50 <= {r['target_p50_ms']:.0f} ms: {met})")
        for key in ("embed_ms", "search_ms", "router_ms", "write_and_policy_ms"):
            lines.append(f"      {key:<20} p50 {parts[key]['p50_ms']:6.2f} ms  p95 {parts[key]['p95_ms']:6.2f} ms")
    if "gatekeeper_adaptive" in r["overhead"]:
        router = r["overhead"]["gatekeeper_adaptive"]["router_ms"]["p50_ms"]
        base = r["overhead"]["always_rag"]["total"]["p50_ms"]
        target = r.get("router_target_p50_ms", ROUTER_TARGET_MS)
        lines.append(f"  router overhead (signal searches + features + classifier) p50 {router:.2f} ms "
                     f"(target <= {target:.0f} ms: {'MET' if router <= target else 'NOT MET'}); "
                     f"gatekeeper_adaptive/always_rag total p50 ratio "
                     f"{r['overhead']['gatekeeper_adaptive']['total']['p50_ms'] / base:.2f}")
    if "reader" in r:
        rd = r["reader"]
        lines += [f"== reader {rd['model']} (load {rd['load_s']:.1f} s)",
                  f"  prompt processing {rd['prompt_tokens_per_s']:.0f} tokens/s ({rd['prompt_tokens']}-token prompt)",
                  f"  decoding {rd['decode_tokens_per_s']:.1f} tokens/s ({rd['decode_note']})",
                  f"  question: {rd['question']}  (gold paragraph {rd['gold']})"]
        for policy, a in rd["answers"].items():
            lines.append(f"  {policy:<11} {a['seconds']:6.2f} s  {a['input_tokens']:>5} in / {a['output_tokens']:>3} out  -> {a['answer']!r}")
    m = r["machine"]
    lines.append(f"\nmachine: {m['usable_cpus']}/{m['cpu_count']} CPUs, load at start {', '.join(f'{x:.2f}' for x in m['load_avg_at_start'])}")
    if "cpu" in m:
        lines.append(f"cpu: {m['cpu']['model']} ({m['cpu']['machine']}), flags {' '.join(m['cpu']['flags']) or 'none reported'}")
    return "\n".join(lines)
