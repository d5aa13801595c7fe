"""`python -m eval.bench load`: many clients against a real `arag serve` on loopback, bounded in
count and time.

The benchmark starts the server itself (so it can read its RSS from /proc), with a fresh admin key,
on the given data directory's collection, then runs two phases of `--duration` seconds each:
`--clients` clients asking POST /v1/query with a mix of policies, then the same number streaming
chat completions (SSE). A client that is refused (429/503) waits its Retry-After (at most 2 s)
and asks again. Meanwhile a prober asks GET /healthz every 100 ms.

It reports per phase: requests by outcome (200, 429, 503, other errors, client timeouts),
throughput, p50/p95 latency of answers and of refusals, time to the first streamed chunk, the
/healthz p50/p99 under load against the idle /healthz measured first (the named baseline, as a
ratio), the server's RSS before and after, and whether every decision id a client received can
be read back afterwards. With `--fake` the server runs deterministic fake models
(adaptive_rag/testing/fake_server.py), to test the benchmark itself quickly.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from eval.bench.common import log, machine_info, percentiles

WORK_DIR = Path("bench-results")  # under the current directory
POLICIES = ("closed_book", "always_rag", "self_route", "adaptive")
FAKE_POLICIES = POLICIES[:3]  # the fake embedder's vectors fit no panel router
FAKE_QUESTION = "What do otters do?"


def _questions(fake: bool) -> list[str]:
    if fake:
        return [FAKE_QUESTION]
    from adaptive_rag.settings import DEMO_SAMPLE

    sample = json.loads(DEMO_SAMPLE.read_text(encoding="utf-8"))
    return [p["qas"][0]["question"] for a in sample["data"] for p in a["paragraphs"][:3] if p["qas"]]


def _rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """`arag serve` (or the fake-model server) in a child process on 127.0.0.1."""

    def __init__(self, args, key: str, log_path: Path, data_dir: Path | None = None, env_extra: dict | None = None):
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "ARAG_API_KEYS": f"bench:admin:{key}", "ARAG_ACCESS_LOG": "false", **(env_extra or {})}
        data_dir = data_dir or args.data_dir
        if data_dir:
            env["ARAG_DATA_DIR"] = str(data_dir)
        if args.fake:
            cmd = [sys.executable, "-m", "adaptive_rag.testing.fake_server",
                   "--data-dir", str(data_dir or log_path.parent / "data"),
                   "--port", str(self.port), "--word-delay", str(args.fake_word_delay)]
        else:
            cmd = [sys.executable, "-m", "adaptive_rag.cli", "serve", "--port", str(self.port)]
        self._log = open(log_path, "w")
        self.proc = subprocess.Popen(cmd, env=env, stdout=self._log, stderr=subprocess.STDOUT)
        self.log_path = log_path

    def wait_ready(self, timeout_s: float) -> None:
        import httpx

        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"error: the server exited: {self.log_path.read_text()[-2000:]}")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        raise SystemExit(f"error: the server was not ready within {timeout_s:g} s (log: {self.log_path})")

    def stop(self) -> int | None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self._log.close()
        return self.proc.returncode


async def _probe_health(client, url: str, stop: asyncio.Event, samples: list[float], errors: list[str]) -> None:
    while not stop.is_set():
        started = time.perf_counter()
        try:
            r = await client.get(f"{url}/healthz", timeout=5)
            if r.status_code != 200:
                errors.append(f"healthz {r.status_code}")
        except Exception as exc:  # noqa: BLE001 - every failure is counted
            errors.append(f"healthz {type(exc).__name__}")
        samples.append((time.perf_counter() - started) * 1e3)
        await asyncio.sleep(0.1)


async def _ask_query(client, url, collection, question, policy, timeout_s):
    r = await client.post(f"{url}/v1/query", json={"query": question, "collection": collection, "policy": policy},
                          timeout=timeout_s)
    decision_id = r.json().get("id") if r.status_code == 200 else None
    return r.status_code, decision_id, None, r.headers.get("Retry-After")


async def _ask_stream(client, url, collection, question, policy, timeout_s):
    """One streamed chat completion; the status, the decision id of its first chunk, the time to
    that chunk, and an error event if the stream ended with one."""
    started = time.perf_counter()
    body = {"model": f"adaptive-rag:{collection}:{policy}", "stream": True,
            "messages": [{"role": "user", "content": question}]}
    async with client.stream("POST", f"{url}/v1/chat/completions", json=body, timeout=timeout_s) as r:
        if r.status_code != 200:
            await r.aread()
            return r.status_code, None, None, r.headers.get("Retry-After")
        decision_id, first_ms, done = None, None, False
        async for line in r.aiter_lines():
            if not line.startswith("data: "):
                continue
            data = line[6:]
            if data == "[DONE]":
                done = True
                break
            chunk = json.loads(data)
            if "error" in chunk:
                return "stream_error", chunk.get("decision_id"), first_ms, None
            if decision_id is None:
                decision_id, first_ms = chunk.get("decision_id"), (time.perf_counter() - started) * 1e3
        return (200 if done else "truncated"), decision_id, first_ms, None


async def _client(i, client, url, collection, questions, policies, deadline, stream, timeout_s, out):
    n = 0
    while time.monotonic() < deadline:
        question = questions[(i * 7 + n) % len(questions)]
        policy = policies[(i + n) % len(policies)]
        n += 1
        started = time.perf_counter()
        try:
            status, decision_id, first_ms, retry_after = await (_ask_stream if stream else _ask_query)(
                client, url, collection, question, policy, timeout_s)
        except asyncio.TimeoutError:
            status, decision_id, first_ms, retry_after = "client_timeout", None, None, None
        except Exception as exc:  # noqa: BLE001 - httpx timeouts and connection errors are outcomes here
            import httpx

            kind = "client_timeout" if isinstance(exc, httpx.TimeoutException) else f"error:{type(exc).__name__}"
            status, decision_id, first_ms, retry_after = kind, None, None, None
        out.append({"status": status, "ms": (time.perf_counter() - started) * 1e3, "decision_id": decision_id,
                    "first_chunk_ms": first_ms, "policy": policy})
        if status in (429, 503):
            await asyncio.sleep(min(float(retry_after or 1), 2.0))


async def _phase(urls, key, collection, questions, policies, clients, duration_s, stream, timeout_s) -> dict[str, Any]:
    """`clients` clients for `duration_s`, client i asking replica i % len(urls); a decision id
    counts as readable when every replica serves it."""
    urls = [urls] if isinstance(urls, str) else list(urls)
    url = urls[0]
    import httpx

    limits = httpx.Limits(max_connections=clients + 8, max_keepalive_connections=clients + 8)
    async with httpx.AsyncClient(headers={"Authorization": f"Bearer {key}"}, limits=limits) as client:
        stop, health, health_errors, results = asyncio.Event(), [], [], []
        prober = asyncio.create_task(_probe_health(client, url, stop, health, health_errors))
        deadline = time.monotonic() + duration_s
        started = time.perf_counter()
        await asyncio.gather(*(_client(i, client, urls[i % len(urls)], collection, questions, policies, deadline,
                                       stream, timeout_s, results)
                               for i in range(clients)))
        wall_s = time.perf_counter() - started
        stop.set()
        await prober
        ids = [r["decision_id"] for r in results if r["decision_id"]]
        readable = 0
        for decision_id in ids:
            served = 0
            for replica in urls:
                r = await client.get(f"{replica}/v1/decisions/{decision_id}", timeout=30)
                served += r.status_code == 200 and r.json()["id"] == decision_id
            readable += served == len(urls)
    outcomes: dict[str, int] = {}
    for r in results:
        outcomes[str(r["status"])] = outcomes.get(str(r["status"]), 0) + 1
    answered = [r["ms"] for r in results if r["status"] == 200]
    refused = [r["ms"] for r in results if r["status"] in (429, 503)]
    unexpected = sum(n for s, n in outcomes.items() if s not in ("200", "429", "503"))
    first_chunks = [r["first_chunk_ms"] for r in results if r["first_chunk_ms"] is not None]
    return {"mode": "stream" if stream else "query", "clients": clients, "duration_s": round(wall_s, 1),
            "requests": len(results), "outcomes": outcomes, "other_errors": unexpected,
            "client_timeouts": outcomes.get("client_timeout", 0), "answers_per_s": len(answered) / wall_s,
            "answered": percentiles(answered), "refused": percentiles(refused),
            "slowest_ms": max((r["ms"] for r in results), default=None),
            "first_chunk": percentiles(first_chunks) if stream else None,
            "healthz": _p99(health), "healthz_errors": len(health_errors),
            "decision_ids": len(ids), "decision_ids_readable": readable}


def _p99(samples: list[float]) -> dict[str, float]:
    import numpy as np

    if not samples:
        return {"n": 0}
    arr = np.asarray(samples)
    return {"n": int(arr.size), "p50_ms": float(np.percentile(arr, 50)), "p99_ms": float(np.percentile(arr, 99)),
            "max_ms": float(arr.max())}


async def _idle_health(url: str, n: int = 50) -> dict[str, float]:
    import httpx

    samples = []
    async with httpx.AsyncClient() as client:
        for _ in range(n):
            started = time.perf_counter()
            await client.get(f"{url}/healthz", timeout=5)
            samples.append((time.perf_counter() - started) * 1e3)
            await asyncio.sleep(0.02)
    return _p99(samples)


def _warm_up(url: str, key: str, collection: str, question: str, policies) -> dict[str, Any]:
    import httpx

    statuses = {}
    for policy in policies:
        r = httpx.post(f"{url}/v1/query", json={"query": question, "collection": collection, "policy": policy},
                       headers={"Authorization": f"Bearer {key}"}, timeout=600)
        statuses[policy] = r.status_code
    return statuses


def _header(args, server: str) -> dict[str, Any]:
    """What every load result starts with: the machine (CPU flags included) and the setup."""
    from adaptive_rag.models.cpu import cpu_info

    return {"benchmark": "load", "machine": {**machine_info(), "cpu": cpu_info().summary()}, "server": server,
            "collection": "kb" if args.fake else args.collection, "clients": args.clients,
            "duration_s": args.duration, "client_timeout_s": args.timeout,
            "policies": list(FAKE_POLICIES if args.fake else POLICIES)}


def _measured_phase(result, urls, key, questions, args, stream: bool, rss_pid: int) -> dict[str, Any]:
    """One phase against `urls`, with the server's RSS after it and /healthz p99 against idle."""
    phase = asyncio.run(_phase(urls, key, result["collection"], questions, result["policies"], args.clients,
                               args.duration, stream, args.timeout))
    phase["rss_mb_after"] = _rss_mb(rss_pid)
    idle_p99 = result["healthz_idle"].get("p99_ms")
    phase["healthz_p99_vs_idle"] = phase["healthz"].get("p99_ms", float("nan")) / idle_p99 if idle_p99 else None
    return phase


def run(args) -> dict[str, Any]:
    if args.replicas > 1:
        return run_replicas(args)

    out_dir = Path(args.work_dir or (WORK_DIR / "load"))
    out_dir.mkdir(parents=True, exist_ok=True)
    key = secrets.token_hex(16)
    server = Server(args, key, out_dir / "server.log")
    result = _header(args, "fake models" if args.fake else "arag serve")
    try:
        log(f"starting the server on {server.url} (log: {server.log_path})")
        server.wait_ready(args.ready_timeout)
        questions, collection = _questions(args.fake), result["collection"]
        # one answer per policy first: weights are paged in and the allocator's pools grow on the
        # first generations, so "before" is measured warm and a growth after it means a leak
        result["rss_mb_cold"] = _rss_mb(server.proc.pid)
        result["warmup"] = _warm_up(server.url, key, collection, questions[0], result["policies"])
        result["rss_mb_before"] = _rss_mb(server.proc.pid)
        result["healthz_idle"] = asyncio.run(_idle_health(server.url))
        phases = []
        for stream in ([False, True] if args.stream else [False]):
            log(f"{args.clients} {'streaming ' if stream else ''}clients for {args.duration:g} s")
            phases.append(_measured_phase(result, server.url, key, questions, args, stream, server.proc.pid))
        result["phases"] = phases
        result["rss_mb_after"] = _rss_mb(server.proc.pid)
    finally:
        result["server_exit_code"] = server.stop()
    return result


def run_replicas(args) -> dict[str, Any]:
    """`--replicas N`: N servers on one PostgreSQL decision log (`--decisions-url`, or a private
    server from Debian's postgresql package started for the run), each with its own copy of the
    collection (the embedded store serves one process) and the same models; the clients spread
    over them, and every returned decision id must be readable from every replica."""
    import shutil

    from adaptive_rag.settings import Settings

    out_dir = Path(args.work_dir or (WORK_DIR / "load-replicas"))
    out_dir.mkdir(parents=True, exist_ok=True)
    key, pg = secrets.token_hex(16), None
    url = args.decisions_url
    if url is None:
        from adaptive_rag.testing.postgres import start_private_server

        log("starting a private PostgreSQL server for the decision log")
        pg = start_private_server()
        url = pg.url
    source = Settings(**({"data_dir": args.data_dir} if args.data_dir else {}))
    env = {"ARAG_DECISIONS_URL": url, "ARAG_MODEL_CACHE_DIR": str(source.models_dir)}
    servers = []
    result = {**_header(args, f"{args.replicas} replicas of {'fake models' if args.fake else 'arag serve'} "
                                 "on one PostgreSQL decision log"), "replicas": args.replicas}
    try:
        for i in range(args.replicas):
            data_dir = out_dir / f"replica{i}" / "data"
            shutil.rmtree(data_dir, ignore_errors=True)
            if not args.fake:  # a copy of the collection and the trained routers per replica
                for part in (Path("collections") / args.collection, Path("routers")):
                    if (source.data_dir / part).exists():
                        shutil.copytree(source.data_dir / part, data_dir / part)
            servers.append(Server(args, key, out_dir / f"replica{i}.log", data_dir=data_dir, env_extra=env))
        for server in servers:
            server.wait_ready(args.ready_timeout)
        questions, collection = _questions(args.fake), result["collection"]
        for server in servers:
            _warm_up(server.url, key, collection, questions[0], result["policies"])
        result["healthz_idle"] = asyncio.run(_idle_health(servers[0].url))
        log(f"{args.clients} clients over {args.replicas} replicas for {args.duration:g} s")
        phase = _measured_phase(result, [s.url for s in servers], key, questions, args, False, servers[0].proc.pid)
        result["phases"] = [phase]
        result["rss_mb_cold"] = result["rss_mb_before"] = None
        result["warmup"] = {}
        result["rss_mb_after"] = phase["rss_mb_after"]
    finally:
        result["server_exit_code"] = [s.stop() for s in servers]
        if pg is not None:
            pg.stop()
    return result


def format_result(result: dict[str, Any]) -> str:
    cpu = result["machine"]["cpu"]
    lines = [f"== machine: {cpu['model']}, {cpu['physical_cores']} physical cores, flags {' '.join(cpu['flags'])}",
             f"== server: {result['server']} on loopback, collection {result['collection']}, "
             f"{result['clients']} clients x {result['duration_s']:g} s per phase, client timeout "
             f"{result['client_timeout_s']:g} s, policies {', '.join(result['policies'])}",
             f"idle /healthz: p50 {result['healthz_idle']['p50_ms']:.1f} ms, p99 {result['healthz_idle']['p99_ms']:.1f} ms"
             + (f"; server RSS {result['rss_mb_cold']:.0f} MB cold, {result['rss_mb_before']:.0f} MB after one answer "
                f"per policy (warm-up {result['warmup']}), {result['rss_mb_after']:.0f} MB after the load "
                f"({result['rss_mb_after'] / result['rss_mb_before']:.2f}x warm)" if result.get("rss_mb_before") else "")]
    for p in result.get("phases", []):
        lines += [f"-- {p['mode']}: {p['requests']} requests in {p['duration_s']:g} s; outcomes {p['outcomes']}; "
                  f"other errors {p['other_errors']}, client timeouts {p['client_timeouts']}",
                  f"   answers {p['answers_per_s']:.2f}/s, answer latency p50 {p['answered']['p50_ms']:.0f} ms "
                  f"p95 {p['answered']['p95_ms']:.0f} ms; refusals p50 {p['refused']['p50_ms']:.0f} ms "
                  f"p95 {p['refused']['p95_ms']:.0f} ms; slowest {p['slowest_ms']:.0f} ms",
                  f"   /healthz under load: p50 {p['healthz']['p50_ms']:.1f} ms, p99 {p['healthz']['p99_ms']:.1f} ms "
                  f"({p['healthz_p99_vs_idle']:.1f}x idle p99), errors {p['healthz_errors']}; "
                  f"RSS after {p['rss_mb_after']:.0f} MB",
                  f"   decision ids returned {p['decision_ids']}, readable afterwards"
                  f"{' from every replica' if result.get('replicas', 1) > 1 else ''} {p['decision_ids_readable']}"]
        if p.get("first_chunk"):
            lines.append(f"   first streamed chunk p50 {p['first_chunk']['p50_ms']:.0f} ms, p95 {p['first_chunk']['p95_ms']:.0f} ms")
    return "\n".join(lines)
