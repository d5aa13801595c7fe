"""`python -m eval.bench generation`: how fast each generation engine runs each bundled model on
this CPU, whether concurrent requests share it, and whether the engines answer alike.

1. The machine: CPU model and flags, cores used, and the measured peak float32 matrix-multiply
   rate (numpy sgemm, best of several 2048x2048 products), the yardstick for everything below.
2. Per model x engine (`llamacpp`; `transformers-float32`; `transformers-bfloat16`, only where
   the CPU has native bf16 unless `--engines` names it): load time; prompt tokens/s (distinct
   ~1,000-token prompts, 1 new token, so no prompt cache helps); decode tokens/s (the difference
   between 64 and 1 new tokens on equal-length prompts); the wall time of a RAG answer (SQuAD
   paragraphs filling ~1,000 tokens of context, at most 32 new tokens, with the refusal-word
   probe the product asks for), p50 over `--prompts` prompts. Prompt processing is also given as a
   fraction of the sgemm peak: rate x 2 x (parameters a prompt token multiplies: all but the
   embedding table and the output head, which runs for the last position only) / peak FLOP/s.
3. Concurrency through the real server (`arag serve`'s app on loopback, SQuAD dev ingested,
   each engine): 8 RAG requests (always_rag) one after another, then 8 other questions at
   once; wall-time ratio (target >= 1.5x). Distinct questions, so no prompt cache is shared. The
   same for closed-book requests (short prompts: decoding dominates) shows where batching pays.
4. Quality parity: the same `--quality` seeded SQuAD test-split questions (articles 32-47) with
   their gold paragraph, answered by every engine of a model with the product's RAG prompt; F1
   per engine and the largest difference (target <= 2 points).

Resumable: with `--out FILE`, every finished section is written at once, and a re-run with the
same FILE skips the sections already there (`--fresh` starts over). Transformers conversions of
the GGUFs go to a temporary directory that is deleted afterwards, so the model cache keeps one
copy of each model. `--emulate-avx2` runs the transformers engines with oneDNN and ATen limited to
AVX2 (ONEDNN_MAX_CPU_ISA=AVX2, ATEN_CPU_CAPABILITY=avx2), the code paths of a CPU without native
bf16, in a child process; it is an emulation, and is labelled so.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from eval.bench.common import (
    bench_settings, load_questions, log, machine_info, models_dir_or_default, percentiles, squad_path,
)

MODELS = ("smollm2-135m", "qwen2.5-coder-0.5b", "qwen2.5-coder-1.5b")
PARITY_POINTS = 2.0
PREFILL_TARGET = 0.5
RAG_CONTEXT_CHARS = 3300  # ~1,000 tokens of SQuAD paragraphs with their titles and the prompt
AVX2_ENV = {"ONEDNN_MAX_CPU_ISA": "AVX2", "ATEN_CPU_CAPABILITY": "avx2"}


def sgemm_peak_gflops(n: int = 2048, repeats: int = 5) -> float:
    import numpy as np

    a = np.random.default_rng(0).random((n, n), dtype=np.float32)
    b = np.random.default_rng(1).random((n, n), dtype=np.float32)
    a @ b
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t0)
    return 2 * n ** 3 / best / 1e9


def gguf_parameters(path: Path) -> tuple[int, int]:
    """(all parameters, those a prompt token multiplies): the token-embedding table is a lookup
    and the output head runs for the last position only, so prompt processing costs about
    2 x (parameters - embedding - head) FLOPs per token (attention adds a little at 1k tokens)."""
    from gguf import GGUFReader

    tensors = GGUFReader(str(path)).tensors
    total = sum(int(t.n_elements) for t in tensors)
    lookup = sum(int(t.n_elements) for t in tensors if t.name in ("token_embd.weight", "output.weight"))
    return total, total - lookup


def default_engines(native_bf16: bool) -> list[str]:
    return ["llamacpp", "transformers-float32"] + (["transformers-bfloat16"] if native_bf16 else [])


# -- prompts -------------------------------------------------------------------------------------

def squad_articles(settings) -> list[dict]:
    return json.loads(squad_path(settings).read_text(encoding="utf-8"))["data"]


def rag_contexts(articles: list[dict], n: int) -> list[tuple[str, str]]:
    """(question, ~1,000-token context) pairs: the question's paragraph, then the article's next
    paragraphs, numbered like the product's RAG prompt, from report-split articles."""
    out = []
    for article in articles[32:48]:
        paras = [p for p in article["paragraphs"] if p["context"].strip()]
        for i in range(0, len(paras), 6):
            parts, size = [], 0
            for j, para in enumerate(paras[i:] + paras[:i]):
                if size >= RAG_CONTEXT_CHARS:
                    break
                parts.append(f"[{j + 1}] {article['title']}\n{para['context']}")
                size += len(para["context"])
            out.append((paras[i]["qas"][0]["question"], "\n\n".join(parts)))
            if len(out) == n:
                return out
    return out


def gold_questions(settings, n: int, seed: int) -> list[dict]:
    """`n` seeded report-split questions with their gold paragraph and answers."""
    questions, _ = load_questions(squad_path(settings), "report", n, seed)
    by_key = {}
    for article in squad_articles(settings):
        for pi, para in enumerate(article["paragraphs"]):
            for qa in para["qas"]:
                by_key[(f"{article['title']}#{pi}", qa["question"])] = (para["context"], [a["text"] for a in qa["answers"]])
    return [{"question": q.text, "context": by_key[(q.gold_key, q.text)][0], "answers": by_key[(q.gold_key, q.text)][1]}
            for q in questions]


# -- one model on one engine ---------------------------------------------------------------------

def make_lm(model: str, engine: str, models_dir: Path, conversions: Path):
    from adaptive_rag.models.catalog import DEFAULT_CATALOG
    from adaptive_rag.models.llamacpp_lm import LlamaCppLM
    from adaptive_rag.models.transformers_lm import TransformersLM
    from adaptive_rag.models.pull import local_model_path

    spec = DEFAULT_CATALOG[model]
    path = local_model_path(model, None, spec.pull, models_dir)
    if engine == "llamacpp":
        return LlamaCppLM(model, path, min(spec.context_window, 8192))
    dtype = engine.split("-", 1)[1]
    return TransformersLM(model, path, conversions, spec.context_window, dtype)


def measure(model: str, engine: str, settings, models_dir: Path, conversions: Path, n_prompts: int,
            quality: list[dict], peak_gflops: float) -> dict[str, Any]:
    from adaptive_rag.query import prompts
    from adaptive_rag.models.lm import Message
    from adaptive_rag.query.signals import REFUSAL
    from eval.metrics import f1_score

    lm = make_lm(model, engine, models_dir, conversions)
    t0 = time.perf_counter()
    lm.load()
    load_s = time.perf_counter() - t0
    contexts = rag_contexts(squad_articles(settings), 2 * n_prompts)
    lm.generate([Message("user", "Say hello.")], 2)  # first-call allocations out of the figures
    # prompt processing: distinct prompts, one new token
    prefill = []
    for question, context in contexts[:n_prompts]:
        g = lm.generate(prompts.with_context(question, context), 1)
        prefill.append((g.usage.input_tokens, g.latency_ms))
    prompt_tps = sum(n for n, _ in prefill) / (sum(ms for _, ms in prefill) / 1e3)
    # decode: 64 vs 1 new tokens on two distinct prompts of equal length
    story = "Write a long story about a river, a mill and a miller's family. Story number {}."
    short = lm.generate([Message("user", story.format(1))], 1)
    long = lm.generate([Message("user", story.format(2))], 64)
    decode_tps = (long.usage.output_tokens - 1) / max(1e-6, (long.latency_ms - short.latency_ms) / 1e3)
    # RAG answers as the product asks for them (refusal probe included)
    rag_ms, rag_tokens = [], []
    for question, context in contexts[n_prompts:2 * n_prompts]:
        started = time.perf_counter()
        g = lm.generate(prompts.with_context(question, context), 32, first_token_candidates=(REFUSAL,))
        rag_ms.append((time.perf_counter() - started) * 1e3)
        rag_tokens.append(g.usage.input_tokens)
    # quality parity on gold paragraphs
    answers, f1s = [], []
    for q in quality:
        g = lm.generate(prompts.with_context(q["question"], q["context"]), 32)
        answers.append(g.text)
        f1s.append(f1_score(g.text, q["answers"]))
    params, matmul_params = gguf_parameters(Path(lm.gguf if hasattr(lm, "gguf") else lm._path))
    lm.close()
    implied = peak_gflops * 1e9 / (2 * matmul_params)
    return {"model": model, "engine": engine, "label": lm.label, "parameters": params,
            "prompt_matmul_parameters": matmul_params, "load_s": load_s,
            "prompt_tokens_per_s": prompt_tps, "prompt_tokens_mean": statistics.mean(n for n, _ in prefill),
            "prefill_share_of_sgemm_peak": prompt_tps / implied, "sgemm_implied_tokens_per_s": implied,
            "decode_tokens_per_s": decode_tps, "rag_answer": percentiles(rag_ms),
            "rag_prompt_tokens_mean": statistics.mean(rag_tokens) if rag_tokens else None,
            "quality": {"questions": len(quality), "f1": statistics.mean(f1s) if f1s else None, "answers": answers,
                        "f1s": f1s}}


# -- driver --------------------------------------------------------------------------------------

def _save(result: dict, out: Path | None) -> None:
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_suffix(out.suffix + ".partial")
        tmp.write_text(json.dumps(result, indent=2) + "\n")
        tmp.replace(out)


def run(args) -> dict[str, Any]:
    from adaptive_rag.models.cpu import cpu_info

    if getattr(args, "child", False):
        return _child(args)
    out = args.out
    result: dict[str, Any] = {}
    if out is not None and out.is_file() and not args.fresh:
        result = json.loads(out.read_text())
        log(f"resuming {out}: {len(result.get('runs', {}))} runs done")
    cpu = cpu_info().summary()
    if "machine" not in result:
        log("measuring the sgemm peak")
        result.update(benchmark="generation", machine={**machine_info(), "cpu": cpu,
                                                        "sgemm_peak_gflops": sgemm_peak_gflops()})
        _save(result, out)
    result.setdefault("runs", {})
    peak = result["machine"]["sgemm_peak_gflops"]
    models_dir = models_dir_or_default(args.models_dir)
    engines = args.engines.split(",") if args.engines else default_engines(cpu["native_bf16"])
    tmp = Path(tempfile.mkdtemp(prefix="arag-bench-gen-"))
    try:
        settings, _ = bench_settings(tmp / "data", args.models_dir, True)
        settings = settings.model_copy(update={"model_cache_dir": models_dir})
        quality = gold_questions(settings, args.quality, args.seed)
        for model in args.models.split(","):
            for engine in engines:
                key = f"{model}|{engine}"
                if key in result["runs"]:
                    continue
                log(f"{key}: {args.prompts} prompts, {len(quality)} quality questions")
                result["runs"][key] = measure(model, engine, settings, models_dir, tmp / "conversions", args.prompts,
                                              quality, peak)
                shutil.rmtree(tmp / "conversions", ignore_errors=True)
                _save(result, out)
        if args.concurrency and "concurrency" not in result:
            reader = settings.model_copy(update={"reader_model": args.concurrency_model,
                                                 "long_context_model": args.concurrency_model})
            from eval.bench.concurrency import concurrency

            result["concurrency"] = concurrency(reader, args.concurrency, args.seed, args.concurrency_engines.split(","))
            _save(result, out)
        if args.emulate_avx2:
            for engine in ("transformers-float32", "transformers-bfloat16"):
                key = f"{args.emulate_model}|{engine}|emulated-avx2"
                if key not in result["runs"]:
                    log(f"{key}: child process with {AVX2_ENV}")
                    result["runs"][key] = _in_child(args, engine, quality)
                    _save(result, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    _fill_f1s(result["runs"], quality)
    result["parity"] = parity(result["runs"])
    result["targets"] = targets(result)
    return result


def _fill_f1s(runs: dict, quality: list[dict]) -> None:
    """Per-question F1 from the stored answers, for runs written before they were kept."""
    from eval.metrics import f1_score

    for run in runs.values():
        q = run.get("quality") or {}
        if q.get("answers") and "f1s" not in q and len(q["answers"]) == len(quality):
            q["f1s"] = [f1_score(a, g["answers"]) for a, g in zip(q["answers"], quality)]


def _in_child(args, engine: str, quality: list[dict]) -> dict:
    """One transformers run with oneDNN and ATen limited to AVX2, in a fresh process (the limits
    are read when torch loads)."""
    prompts = str(args.emulate_prompts)
    cmd = [sys.executable, "-m", "eval.bench", "generation", "--child", "--json", "--models", args.emulate_model,
           "--engines", engine, "--prompts", prompts, "--quality", str(min(len(quality), args.emulate_quality)),
           "--seed", str(args.seed)]
    if args.models_dir:
        cmd += ["--models-dir", str(args.models_dir)]
    done = subprocess.run(cmd, env={**os.environ, **AVX2_ENV}, capture_output=True, text=True)
    if done.returncode != 0:
        return {"error": done.stderr.strip().splitlines()[-1:] or ["failed"]}
    run = json.loads(done.stdout)
    return {**run, "emulated": AVX2_ENV}


def _child(args) -> dict:
    from adaptive_rag.models.cpu import cpu_info

    tmp = Path(tempfile.mkdtemp(prefix="arag-bench-gen-child-"))
    try:
        settings, _ = bench_settings(tmp / "data", args.models_dir, True)
        models_dir = models_dir_or_default(args.models_dir)
        quality = gold_questions(settings, args.quality, args.seed)
        peak = sgemm_peak_gflops()
        run = measure(args.models.split(",")[0], args.engines.split(",")[0], settings, models_dir,
                      tmp / "conversions", args.prompts, quality, peak)
        return {**run, "child_sgemm_peak_gflops": peak, "cpu": cpu_info().summary()}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def parity(runs: dict) -> dict:
    """Per model: F1 of each engine on the same questions, the largest gap in points, and the
    paired-bootstrap 95% interval of each engine's difference to llama.cpp's."""
    from eval.stats import paired_bootstrap

    by_model: dict[str, dict[str, float]] = {}
    per_question: dict[str, dict[str, list[float]]] = {}
    for key, run in runs.items():
        q = run.get("quality") or {}
        if q.get("f1") is not None and q.get("questions") and "emulated" not in key:
            engine = key.split("|", 1)[1]
            by_model.setdefault(run["model"], {})[engine] = q["f1"]
            if q.get("f1s"):
                per_question.setdefault(run["model"], {})[engine] = q["f1s"]
    out = {}
    for model, scores in by_model.items():
        gap = 100 * (max(scores.values()) - min(scores.values())) if len(scores) > 1 else None
        out[model] = {"f1": scores, "max_gap_points": gap, "met": None if gap is None else gap <= PARITY_POINTS}
        paired = per_question.get(model, {})
        if len(paired) > 1 and "llamacpp" in paired:
            stats = paired_bootstrap(paired, "llamacpp")
            out[model]["diff_vs_llamacpp_ci"] = {e: st["diff_ci"] for e, st in stats.items() if e != "llamacpp"}
    return out


def targets(result: dict) -> dict:
    runs = result["runs"]
    out: dict[str, Any] = {}
    llama = runs.get("qwen2.5-coder-0.5b|llamacpp")
    if llama:
        out["prefill_share_of_peak_0.5b_llamacpp"] = {"value": llama["prefill_share_of_sgemm_peak"],
                                                      "target": PREFILL_TARGET,
                                                      "met": llama["prefill_share_of_sgemm_peak"] >= PREFILL_TARGET}
        # the default on a CPU without native bf16 is llama.cpp; its RAG answer against transformers
        # bf16 run with oneDNN/ATen limited to AVX2 (that CPU's code path, emulated)
        bf16 = runs.get("qwen2.5-coder-0.5b|transformers-bfloat16|emulated-avx2")
        if bf16 and "rag_answer" in bf16:
            speedup = bf16["rag_answer"]["p50_ms"] / llama["rag_answer"]["p50_ms"]
            out["rag_speedup_llamacpp_vs_bf16_without_native_bf16"] = {"value": speedup, "target": 3.0,
                                                                        "met": speedup >= 3.0}
    from adaptive_rag.models.catalog import gguf_engine_for
    from eval.bench.concurrency import CONCURRENCY_TARGET

    default_engine = gguf_engine_for(frozenset(result["machine"]["cpu"]["flags"]))
    c = result.get("concurrency", {}).get(default_engine)
    if c:
        ratio = c["always_rag"]["ratio"]
        out[f"concurrency_ratio_default_engine_{default_engine}"] = {"value": ratio, "target": CONCURRENCY_TARGET,
                                                                      "met": ratio >= CONCURRENCY_TARGET}
    return out


def format_result(r: dict[str, Any]) -> str:
    m = r["machine"]
    cpu = m["cpu"]
    lines = [f"== machine: {cpu['model']} ({cpu['machine']}), {cpu['physical_cores']} physical cores, flags "
             f"{' '.join(cpu['flags'])}, native bf16 {'yes' if cpu['native_bf16'] else 'no'}; "
             f"sgemm peak {m['sgemm_peak_gflops']:.0f} GFLOP/s; load at start {m.get('load_avg_at_start')}",
             "== engines (prompt tok/s, share of the sgemm-implied rate, decode tok/s, RAG answer p50/p95 s, load s, "
             "gold-paragraph F1)"]
    for key, run in r["runs"].items():
        if "error" in run:
            lines.append(f"  {key:<52} failed: {run['error']}")
            continue
        rag = run["rag_answer"]
        lines.append(f"  {key:<52} {run['prompt_tokens_per_s']:7.1f} ({run['prefill_share_of_sgemm_peak']:.0%})  "
                     f"{run['decode_tokens_per_s']:6.1f}  {rag['p50_ms'] / 1e3:6.2f}/{rag['p95_ms'] / 1e3:6.2f}  "
                     f"{run['load_s']:5.1f}  {run['quality']['f1']:.3f}  [{run['label']}, "
                     f"{run['rag_prompt_tokens_mean']:.0f}-token RAG prompts]")
    c = r.get("concurrency") or {}
    for engine, runs in c.items():
        if not isinstance(runs, dict) or "always_rag" not in runs:
            continue
        for policy in ("always_rag", "closed_book"):
            p = runs[policy]
            lines.append(f"== concurrency through the server ({c['reader']}, {p['engine']}, {policy}): {c['requests']} "
                         f"requests sequential {p['sequential_s']:.1f} s, concurrent {p['concurrent_s']:.1f} s, "
                         f"ratio {p['ratio']:.2f}x (tokens in/out {p['concurrent_tokens_in_out']})")
    lines.append("== quality parity (F1 on the same gold-paragraph questions)")
    for model, p in r["parity"].items():
        gap = "n/a" if p["max_gap_points"] is None else f"{p['max_gap_points']:.1f} points"
        cis = "; ".join(f"{e} - llamacpp 95% CI [{lo:+.3f}, {hi:+.3f}]" for e, (lo, hi) in p.get("diff_vs_llamacpp_ci", {}).items())
        lines.append(f"  {model}: " + ", ".join(f"{e} {f:.3f}" for e, f in p["f1"].items()) + f"; max gap {gap}"
                     + (f"; {cis}" if cis else ""))
    lines.append("== targets")
    for name, t in r["targets"].items():
        lines.append(f"  {name}: {t['value']:.2f} (target {t['target']}): {'MET' if t['met'] else 'NOT MET'}")
    return "\n".join(lines)
