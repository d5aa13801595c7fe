"""The concurrency part of `python -m eval.bench generation`: the reader on each engine behind the
real app (uvicorn on loopback, SQuAD dev ingested), 8 questions one after another and 8 other
questions at once, for RAG (prompt-bound) and closed-book (decode-bound) requests. Distinct
questions, so no prompt cache is shared between the two batches."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from eval.bench.common import app_on_loopback, ingest_squad, load_questions, log, squad_path

CONCURRENCY_TARGET = 1.5


def concurrency(settings, n: int, seed: int, engines: list[str]) -> dict[str, Any]:
    """Per engine: the reader on that engine behind the real app (uvicorn on loopback)."""
    from adaptive_rag.models.embedder import load_embedder
    from adaptive_rag.store import open_store

    store = open_store(settings)
    log("concurrency: ingesting squad-dev")
    ingest_squad(settings, store, load_embedder(settings))
    store.close()
    questions, _ = load_questions(squad_path(settings), "report", 2 * n + 1, seed + 1)
    out: dict[str, Any] = {"requests": n, "reader": settings.reader_model, "target_ratio": CONCURRENCY_TARGET}
    for engine in engines:
        from adaptive_rag.models.catalog import ModelSpec

        spec = ModelSpec(**settings.catalog[settings.reader_model].model_dump(exclude_unset=True) | {"backend": engine})
        on_engine = settings.model_copy(update={"models": {**settings.models, settings.reader_model: spec}})
        out[engine] = _serve_and_ask(on_engine, questions, n)
    return out


def _serve_and_ask(settings, questions, n: int) -> dict[str, Any]:
    from adaptive_rag.api.app import create_app

    with app_on_loopback(create_app(settings)) as url:
        return _ask_on(url, questions, n)


def _ask_on(url: str, questions, n: int) -> dict[str, Any]:
    import httpx

    client = httpx.Client(base_url=url, timeout=1800)

    def ask(question: str, policy: str) -> dict:
        reply = client.post("/v1/query", json={"query": question, "collection": "squad-dev", "policy": policy})
        reply.raise_for_status()
        return reply.json()

    def tokens(replies):
        return sum(r["usage"]["input_tokens"] for r in replies), sum(r["usage"]["output_tokens"] for r in replies)

    out: dict[str, Any] = {}
    try:
        for policy in ("always_rag", "closed_book"):
            ask(questions[-1].text, policy)  # warm-up
            t0 = time.perf_counter()
            sequential = [ask(q.text, policy) for q in questions[:n]]
            seq_s = time.perf_counter() - t0
            t0 = time.perf_counter()
            with ThreadPoolExecutor(n) as pool:
                concurrent = list(pool.map(lambda q: ask(q.text, policy), questions[n:2 * n]))
            conc_s = time.perf_counter() - t0
            stages = [r["decision"]["stages"][-1] for r in concurrent]
            out[policy] = {"sequential_s": seq_s, "concurrent_s": conc_s, "ratio": seq_s / conc_s,
                           "engine": sequential[0]["decision"]["stages"][-1].get("engine"),
                           "sequential_tokens_in_out": tokens(sequential), "concurrent_tokens_in_out": tokens(concurrent),
                           "refusal_probe_new_tokens_max": max((s["signals"].get("refusal_probe_new_tokens") or 0)
                                                               for s in stages)}
            log(f"concurrency {out[policy]['engine']} {policy}: {seq_s:.1f} s sequential, {conc_s:.1f} s concurrent")
    finally:
        client.close()
    return out
