"""`python -m eval.bench ui`: the inspector's own cost. 1,000 decisions (made by the real engine
on fake models, so every record has the stages, signals and thresholds a real one has) are listed
on one /ui/decisions page, and one decision page is rendered; both timed in process (the server
time, without a network), against the REST API's JSON list of the same 1,000 decisions (two pages
of 500) as the named baseline.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from eval.bench.common import log, machine_info


def _timed(client, path: str, repeats: int) -> dict[str, float]:
    samples = []
    for _ in range(repeats):
        started = time.perf_counter()
        response = client.get(path)
        samples.append((time.perf_counter() - started) * 1e3)
        assert response.status_code == 200, (path, response.status_code, response.text[:300])
    return {"p50_ms": statistics.median(samples), "max_ms": max(samples), "n": repeats, "bytes": len(response.content)}


def run(args) -> dict[str, Any]:
    from fastapi.testclient import TestClient

    from adaptive_rag.api.app import create_app
    from adaptive_rag.decisions import SQLiteDecisionStore
    from adaptive_rag.models.cpu import cpu_info
    from adaptive_rag.models.panel import Models
    from adaptive_rag.settings import Settings
    from adaptive_rag.store.edge import EdgeStore
    from adaptive_rag.testing import FakeEmbedder, FakeLM, make_engine  # deterministic models, installed
    from adaptive_rag.types import SourceDocument
    from adaptive_rag.usage import Prices
    from ingest.pipeline import Ingestor

    tmp = Path(tempfile.mkdtemp(prefix="arag-bench-ui-"))
    settings = Settings(data_dir=tmp / "data", chunk_size=40, chunk_overlap=5, access_log=False)
    store, embedder = EdgeStore(settings.collections_dir), FakeEmbedder()
    Ingestor(settings, store, embedder).run("kb", [
        SourceDocument(f"d{i}", f"Document {i}: otters hold hands; the river {i} runs by town {i}.") for i in range(50)])
    reader = FakeLM("reader", facts={"otters": "hold hands", "river": "river 7"})
    engine = make_engine(settings, store, embedder, Models(reader, reader, {"reader": Prices(0.5, 1.5)}),
                    SQLiteDecisionStore(tmp / "decisions.sqlite"))
    policies = ("self_route", "always_rag", "closed_book", "probe")
    log(f"answering {args.decisions} questions on fake models")
    for i in range(args.decisions):
        engine.answer("kb", f"Question {i}: what do otters or the river {i % 50} do?", policy=policies[i % len(policies)],
                      queued_ms=1.0)
    one = engine.decision_store.list(limit=1)[0]["id"]
    result: dict[str, Any] = {"benchmark": "ui", "machine": {**machine_info(), "cpu": cpu_info().summary()},
                              "decisions": args.decisions}
    with TestClient(create_app(settings, engine=engine)) as client:
        _timed(client, "/ui/decisions?limit=1000", 2)  # warm-up: templates compile, caches fill
        result["ui_list_1000"] = _timed(client, "/ui/decisions?limit=1000", args.repeats)
        result["ui_list_50"] = _timed(client, "/ui/decisions", args.repeats)
        result["ui_decision"] = _timed(client, f"/ui/decisions/{one}", args.repeats)
        result["ui_overview"] = _timed(client, "/ui/overview", args.repeats)
        base = [_timed(client, f"/v1/decisions?limit=500&offset={o}", args.repeats) for o in (0, 500)]
        result["api_json_1000"] = {"p50_ms": sum(b["p50_ms"] for b in base), "n": args.repeats,
                                   "bytes": sum(b["bytes"] for b in base)}
    store.close()
    result["ratio_ui_list_to_json"] = result["ui_list_1000"]["p50_ms"] / result["api_json_1000"]["p50_ms"]
    result["target_ms"] = 300.0
    result["met"] = result["ui_list_1000"]["p50_ms"] < 300.0
    return result


def format_result(result: dict[str, Any]) -> str:
    cpu = result["machine"]["cpu"]
    return "\n".join([
        f"== machine: {cpu['model']}, {cpu['physical_cores']} physical cores, flags {' '.join(cpu['flags'])}",
        f"{result['decisions']} decisions in the log (real engine, fake models)",
        f"/ui/decisions?limit=1000: p50 {result['ui_list_1000']['p50_ms']:.0f} ms, max {result['ui_list_1000']['max_ms']:.0f} ms "
        f"({result['ui_list_1000']['bytes'] / 1e3:.0f} kB); target < {result['target_ms']:.0f} ms: "
        f"{'met' if result['met'] else 'NOT met'}",
        f"baseline, the REST list of the same 1,000 (2 x 500, JSON): p50 {result['api_json_1000']['p50_ms']:.0f} ms "
        f"({result['api_json_1000']['bytes'] / 1e3:.0f} kB); ratio UI / JSON {result['ratio_ui_list_to_json']:.2f}x",
        f"/ui/decisions (50): p50 {result['ui_list_50']['p50_ms']:.0f} ms; one decision: p50 "
        f"{result['ui_decision']['p50_ms']:.0f} ms; overview: p50 {result['ui_overview']['p50_ms']:.0f} ms"])
