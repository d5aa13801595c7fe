"""The answer cache's latency (`python -m eval.bench cache`), real components only:

- **lookup**, per decision-log backend (SQLite; PostgreSQL when a server is reachable or the
  machine has its binaries): `--entries` SQuAD dev questions (real MiniLM vectors) stored as
  entries of one collection, key scope and policy, then per question (`--lookups` of them):
  - a miss: normalising, the exact lookup in the table (not found), catching the near index up
    when due (at most once a second), and its nearest-entry search over every entry (ARAG_CACHE=semantic: the most a miss adds,
    the query's embedding excepted, which retrieval needs anyway);
  - an exact hit: normalising, the exact lookup (found) and the validity check (the collection
    version, for answers citing nothing).
- **end to end**: `--requests` questions of the demo sample asked through `POST /v1/query` on a
  loopback server (uvicorn) with the settings' models, once (answered by the reader: the cache
  misses and stores them) and again (exact hits: no model call); the p50 of each.

Figures are milliseconds (p50, p95). The machine line names the CPU and its flags.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from eval.bench.common import app_on_loopback, log, machine_info, percentiles


def _entries(settings, n: int) -> tuple[list[str], np.ndarray]:
    from adaptive_rag.models.embedder import load_embedder

    data = json.loads((Path(settings.shared_data_dir) / "squad_dev_v1.1.json").read_text(encoding="utf-8"))["data"]
    questions = list(dict.fromkeys(qa["question"] for a in data for p in a["paragraphs"] for qa in p["qas"]))[:n]
    embedder = load_embedder(settings)
    t0 = time.perf_counter()
    vectors = np.vstack([embedder.embed_documents(questions[i:i + 256]) for i in range(0, len(questions), 256)])
    log(f"{len(questions)} questions embedded in {time.perf_counter() - t0:.1f} s")
    return questions, vectors.astype(np.float32)


def lookup_latency(log_, questions: list[str], vectors: np.ndarray, lookups: int) -> dict[str, Any]:
    """Fill `log_` with the entries, then time misses and exact hits (see the module docstring)."""
    from adaptive_rag.answer_cache import CacheIndex, normalise_question, still_valid
    from adaptive_rag.decision_store.cache_sql import CacheEntry, policy_key

    key = policy_key("adaptive", None, None)
    t0 = time.perf_counter()
    for q, v in zip(questions, vectors):
        log_.cache_put(CacheEntry(collection="bench", scope="-", policy_key=key, policy="adaptive",
                                  normalised=normalise_question(q), query=q, embedding=v, answer="an answer",
                                  decision_id="bench", threshold=0.9))
    fill_s = time.perf_counter() - t0
    index = CacheIndex()
    index.refresh(log_)
    rng = np.random.default_rng(0)
    miss_ms, hit_ms = [], []
    for i in rng.choice(len(questions), size=min(lookups, len(questions)), replace=False):
        # a miss: a question of the same shape that is not stored (its words reversed), with its vector
        text = " ".join(reversed(questions[i].split()))
        vector = vectors[i][::-1].copy()
        started = time.perf_counter()
        assert log_.cache_exact("bench", "-", key, normalise_question(text)) is None
        index.refresh_if_due(log_)  # as the query path does
        index.nearest("bench", "-", key, vector)
        miss_ms.append((time.perf_counter() - started) * 1e3)
        started = time.perf_counter()
        entry = log_.cache_exact("bench", "-", key, normalise_question(questions[i]))
        still_valid(entry, None, log_.collection_version("bench"))
        hit_ms.append((time.perf_counter() - started) * 1e3)
    return {"entries": len(questions), "fill_s": round(fill_s, 2), "miss_added": percentiles(miss_ms),
            "exact_hit_lookup": percentiles(hit_ms), "lookups": len(miss_ms)}


def end_to_end(settings, requests: int) -> dict[str, Any]:
    """Exact hits against first answers through POST /v1/query on a loopback server."""
    import httpx

    from adaptive_rag.api.app import create_app
    from adaptive_rag.demo import _sample
    from adaptive_rag.models.embedder import load_embedder
    from adaptive_rag.store import open_store
    from ingest.pipeline import Ingestor
    from ingest.sources import read_source

    s = settings.model_copy(update={"cache": "exact"})
    store = open_store(s)
    try:
        Ingestor(s, store, load_embedder(s)).run("demo", read_source("squad-sample", s))
    finally:
        store.close()
    questions = [qa["question"] for a in _sample()["data"] for p in a["paragraphs"] for qa in p["qas"]][:requests]
    first, again = [], []
    with app_on_loopback(create_app(s)) as url, httpx.Client(base_url=url, timeout=300) as client:
        deadline = time.monotonic() + 600
        while client.get("/readyz").status_code != 200:  # the models load in the background
            if time.monotonic() > deadline:
                raise RuntimeError("the server was not ready within 600 s")
            time.sleep(0.5)
        for rounds, out in ((1, first), (2, again)):
            for q in questions:
                started = time.perf_counter()
                r = client.post("/v1/query", json={"query": q, "collection": "demo", "policy": "always_rag"})
                r.raise_for_status()
                out.append((time.perf_counter() - started) * 1e3)
                stage = next(st for st in r.json()["decision"]["stages"] if st["name"] == "cache")
                if rounds == 2 and stage["signals"].get("lookup") != "exact_hit":
                    raise RuntimeError(f"expected an exact hit, got {stage['outcome']!r}")
    return {"requests": len(questions), "first_answer": percentiles(first), "exact_hit": percentiles(again),
            "speedup_p50": round(percentiles(first)["p50_ms"] / percentiles(again)["p50_ms"], 1)}


def run(args) -> dict[str, Any]:
    from adaptive_rag.decision_store import open_decision_store
    from adaptive_rag.settings import Settings

    result: dict[str, Any] = {"machine": machine_info(), "lookup": {}, "command": "python -m eval.bench " +
                              " ".join(args.argv)}
    with tempfile.TemporaryDirectory(prefix="arag-bench-cache-") as tmp:
        settings = Settings().model_copy(update={"data_dir": Path(tmp), "qdrant_url": None, "decisions_url": None})
        questions, vectors = _entries(settings, args.entries)
        with open_decision_store(None, Path(tmp)) as log_:
            result["lookup"]["sqlite"] = lookup_latency(log_, questions, vectors, args.lookups)
        log("sqlite done")
        try:
            from adaptive_rag.testing.postgres import start_private_server

            pg = start_private_server()
        except LookupError as exc:
            result["lookup"]["postgresql"] = {"skipped": str(exc)}
        else:
            try:
                with open_decision_store(pg.url, Path(tmp)) as log_:
                    result["lookup"]["postgresql"] = lookup_latency(log_, questions, vectors, args.lookups)
            finally:
                pg.stop()
            log("postgresql done")
        if args.requests:
            result["end_to_end"] = end_to_end(settings, args.requests)
    return result


def format_result(r: dict[str, Any]) -> str:
    cpu = r["machine"]["cpu"]
    lines = [f"machine: {cpu.get('model')}, {cpu.get('physical_cores')} cores, flags {' '.join(cpu.get('flags', []))}",
             "", "| backend | entries | miss: added p50 / p95 ms | exact hit lookup p50 / p95 ms |", "|---|---|---|---|"]
    for backend, row in r["lookup"].items():
        if "skipped" in row:
            lines.append(f"| {backend} | skipped: {row['skipped']} | | |")
            continue
        lines.append(f"| {backend} | {row['entries']} | {row['miss_added']['p50_ms']:.2f} / {row['miss_added']['p95_ms']:.2f} "
                     f"| {row['exact_hit_lookup']['p50_ms']:.2f} / {row['exact_hit_lookup']['p95_ms']:.2f} |")
    e = r.get("end_to_end")
    if e:
        lines += ["", f"through POST /v1/query ({e['requests']} demo questions): first answer p50 "
                      f"{e['first_answer']['p50_ms']:.0f} ms, exact hit p50 {e['exact_hit']['p50_ms']:.1f} ms "
                      f"(p95 {e['exact_hit']['p95_ms']:.1f}); {e['speedup_p50']}x"]
    return "\n".join(lines)
