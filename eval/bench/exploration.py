"""`python -m eval.bench exploration`: whether background exploration (ARAG_EXPLORE_SHARE,
adaptive_rag/api/explorer.py) slows users down, with real models on loopback.

The benchmark starts `arag serve` on `--data-dir` (which must hold `--collection`; the demo's is
fine) serving a learned router (`learned:bench-explore`, started on the shipped router when it
does not exist), alternately with exploration off and on (`--rounds` pairs, off first in even
rounds and on first in odd ones; one server per block; the same seeded questions and arrival
times in every block). First it times a few answers
one at a time (exploration off) and sets the arrival rate so that the server is busy about
`--utilization` of the time (0.5: idle half of it; the target needs at least 30% idle). Requests
arrive as a seeded Poisson process, each on its own connection, bounded in count (`--requests`
per block) and time.

Reported per block: user answers' p50 and p95 latency; and the median over blocks of the p50 with
exploration on over off (the named baseline, in the same run; the target is within 1.05); how busy the server
was (the answers' summed time over the block's span, an upper bound); explorations by outcome
and the p95 of the time an exploration took to stop for a user request, from the server's
/metrics (histogram bucket bounds).

    python -m eval.bench exploration --data-dir /tmp/demo-run/data --collection demo --requests 30 --rounds 2
"""

from __future__ import annotations

import asyncio
import random
import re
import secrets
import time
from pathlib import Path
from typing import Any

from eval.bench.common import log, machine_info, percentiles

ROUTER = "bench-explore"


def arrivals(n: int, rate_per_s: float, seed: int) -> list[float]:
    """Seconds from the block's start at which each of `n` requests arrives (Poisson process)."""
    rng, t, out = random.Random(seed), 0.0, []
    for _ in range(n):
        t += rng.expovariate(rate_per_s)
        out.append(t)
    return out


def histogram_quantile(metrics_text: str, name: str, q: float) -> float | None:
    """The upper bound of the bucket that holds quantile `q` of a Prometheus histogram (None
    without observations)."""
    buckets = [(float("inf") if m.group(1) == "+Inf" else float(m.group(1)), float(m.group(2)))
               for m in re.finditer(rf'^{name}_bucket{{le="([^"]+)"}} (\S+)$', metrics_text, re.M)]
    if not buckets or buckets[-1][1] == 0:
        return None
    total = buckets[-1][1]
    return next(bound for bound, count in buckets if count >= q * total)


def counter_values(metrics_text: str, name: str, label: str) -> dict[str, float]:
    return {m.group(1): float(m.group(2))
            for m in re.finditer(rf'^{name}{{{label}="([^"]+)"}} (\S+)$', metrics_text, re.M)}


def _ensure_router(data_dir: Path) -> None:
    from adaptive_rag.decision_store import open_decision_store
    from adaptive_rag.models.embedder import load_embedder
    from adaptive_rag.settings import Settings
    from gatekeeper.router_learning import start

    settings = Settings(data_dir=data_dir)
    with open_decision_store(None, data_dir) as log_:
        if log_.latest_router_version(ROUTER) is None:
            start(log_, ROUTER, "panel:default", data_dir, load_embedder(settings))


async def _block(url: str, key: str, collection: str, questions: list[str], times: list[float],
                 timeout_s: float) -> list[dict]:
    import httpx

    headers = {"Authorization": f"Bearer {key}"}
    out: list[dict] = []
    started = time.monotonic()

    async def one(i: int, at: float) -> None:
        await asyncio.sleep(max(0.0, at - (time.monotonic() - started)))
        t0 = time.perf_counter()
        async with httpx.AsyncClient() as client:
            try:
                r = await client.post(f"{url}/v1/query", headers=headers, timeout=timeout_s,
                                      json={"query": questions[i % len(questions)], "collection": collection,
                                            "policy": "adaptive"})
                status = r.status_code
            except httpx.HTTPError as exc:
                status = type(exc).__name__
        out.append({"i": i, "status": status, "ms": (time.perf_counter() - t0) * 1e3, "at": at})

    await asyncio.gather(*(one(i, at) for i, at in enumerate(times)))
    return out


def _serve(args, key: str, share: float, work: Path, name: str):
    from eval.bench.load import Server

    args.fake = False
    env = {"ARAG_ROUTERS": f'{{"panel": "learned:{ROUTER}"}}', "ARAG_EXPLORE_SHARE": str(share),
           "ARAG_LEARNING_BUDGET_PER_DAY": "1000000"}
    server = Server(args, key, work / f"{name}.log", data_dir=args.data_dir, env_extra=env)
    server.wait_ready(args.ready_timeout)
    return server


def run(args) -> dict[str, Any]:
    import httpx

    from eval.bench.load import WORK_DIR, _questions

    work = WORK_DIR / "exploration"
    work.mkdir(parents=True, exist_ok=True)
    _ensure_router(Path(args.data_dir))
    key, questions = secrets.token_hex(16), _questions(False)
    rng = random.Random(args.seed)
    rng.shuffle(questions)
    server = _serve(args, key, 0.0, work, "warmup")
    try:
        service = []
        for q in questions[:args.warmup]:
            t0 = time.perf_counter()
            httpx.post(f"{server.url}/v1/query", headers={"Authorization": f"Bearer {key}"}, timeout=args.timeout,
                       json={"query": q, "collection": args.collection, "policy": "adaptive"})
            service.append(time.perf_counter() - t0)
    finally:
        server.stop()
    mean_s = sum(service[1:] or service) / len(service[1:] or service)
    rate = args.utilization / mean_s
    times = arrivals(args.requests, rate, args.seed)
    log(f"service time {mean_s:.2f} s; {rate:.3f} requests/s for ~{args.utilization:.0%} busy")
    blocks = []
    for round_ in range(args.rounds):
        pair = (("off", 0.0), ("on", args.explore_share))
        for mode, share in (pair if round_ % 2 == 0 else pair[::-1]):  # neither mode always goes first
            server = _serve(args, key, share, work, f"{mode}-{round_}")
            try:
                answers = asyncio.run(_block(server.url, key, args.collection, questions, times, args.timeout))
                time.sleep(0.5)
                metrics = httpx.get(f"{server.url}/metrics", headers={"Authorization": f"Bearer {key}"}).text
            finally:
                server.stop()
            ok = [a["ms"] for a in answers if a["status"] == 200]
            span_s = max(a["at"] + a["ms"] / 1e3 for a in answers)
            blocks.append({"mode": mode, "round": round_, "answers": len(ok), "failed": len(answers) - len(ok),
                           "latency_ms": percentiles(ok), "busy_share": sum(ok) / 1e3 / span_s,
                           "explorations": counter_values(metrics, "arag_explorations_total", "outcome"),
                           "preempt_p95_s": histogram_quantile(metrics, "arag_exploration_preempt_seconds", 0.95)})
            log(f"{mode} round {round_}: p50 {blocks[-1]['latency_ms'].get('p50_ms')} ms, "
                f"explorations {blocks[-1]['explorations']}")
    p50 = {mode: sorted(b["latency_ms"]["p50_ms"] for b in blocks if b["mode"] == mode) for mode in ("off", "on")}
    median = lambda xs: xs[len(xs) // 2] if xs else None  # noqa: E731
    return {"machine": machine_info(), "service_s": mean_s, "rate_per_s": rate, "utilization_target": args.utilization,
            "explore_share": args.explore_share, "requests_per_block": args.requests, "blocks": blocks,
            "p50_ms": {m: median(v) for m, v in p50.items()},
            "p50_ratio_on_off": (median(p50["on"]) / median(p50["off"])) if p50["off"] and p50["on"] else None,
            "command": "python -m eval.bench " + " ".join(args.argv)}


def format_result(r: dict[str, Any]) -> str:
    cpu = r["machine"]["cpu"]
    lines = [f"machine: {cpu.get('model')}, {cpu.get('physical_cores')} cores, flags {' '.join(cpu.get('flags', []))}",
             f"service time {r['service_s']:.2f} s; arrivals {r['rate_per_s']:.3f}/s (target busy "
             f"{r['utilization_target']:.0%}); explore share {r['explore_share']}; {r['requests_per_block']} requests "
             "per block", "", "| block | answers | p50 ms | p95 ms | busy | explorations | preempt p95 |",
             "|---|---|---|---|---|---|---|"]
    for b in r["blocks"]:
        lat = b["latency_ms"]
        lines.append(f"| {b['mode']} {b['round']} | {b['answers']} ({b['failed']} failed) | {lat.get('p50_ms', 0):.0f} | "
                     f"{lat.get('p95_ms', 0):.0f} | {b['busy_share']:.0%} | {b['explorations'] or '-'} | "
                     f"{b['preempt_p95_s'] if b['preempt_p95_s'] is not None else '-'} |")
    ratio = r["p50_ratio_on_off"]
    lines.append(f"\np50 with exploration on / off: {ratio:.3f}" if ratio else "\np50 ratio: -")
    return "\n".join(lines)
