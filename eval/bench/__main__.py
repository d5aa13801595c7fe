"""Command line of the benchmarks; see `python -m eval.bench -h`.

Output: a human-readable table on stdout, or with `--json` one JSON object; `--out FILE` also
writes the JSON to FILE (so a long run can be read by tools without re-running). Progress goes
to stderr.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print one JSON object instead of tables")
    p.add_argument("--out", type=Path, help="also write the JSON result to this file")
    p.add_argument("--models-dir", type=Path, default=None,
                   help="where the exported ONNX embedder lives (default: arag's model cache, Settings().models_dir); "
                        "exported there first if missing")
    p.add_argument("--quantize", action="store_true", help="use the int8-quantized embedder (embedder_quantize=True)")


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m eval.bench", description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="benchmark", required=True)
    r = sub.add_parser("retrieval", help="SQuAD quality + latency, synthetic 100k-chunk latency, baselines")
    _common(r)
    r.add_argument("--questions", type=int, default=300, help="SQuAD questions sampled (0 = all in the split)")
    r.add_argument("--seed", type=int, default=0, help="seed of the question sample and the synthetic corpus")
    r.add_argument("--split", choices=("report", "tune", "all"), default="report",
                   help="SQuAD articles to draw questions from: report = 32-47, tune = 0-31")
    r.add_argument("--synthetic", type=int, default=100_000, help="synthetic corpus size in chunks (0 = skip)")
    r.add_argument("--synthetic-queries", type=int, default=200, help="queries against the synthetic corpus")
    r.add_argument("--baseline-queries", type=int, default=50,
                   help="synthetic queries run through the slow baselines (rank-bm25, local mode)")
    r.add_argument("--local-mode-max", type=int, default=100_000,
                   help="at most this many synthetic points go into qdrant-client local mode (0 = skip it)")
    q = sub.add_parser("query", help="query-path overhead without generation; local reader speed")
    _common(q)
    q.add_argument("--questions", type=int, default=200, help="SQuAD report-split questions for the overhead")
    q.add_argument("--seed", type=int, default=0)
    q.add_argument("--reader", default=None, help="catalog model to time (default: the settings' reader)")
    q.add_argument("--no-reader", action="store_true", help="skip the reader-speed part")
    i = sub.add_parser("ingest", help="ingest squad-dev; throughput against the raw embedder")
    _common(i)
    i.add_argument("--repeat", type=int, default=1, help="ingest/raw-embed pairs to run (medians are reported)")
    w = sub.add_parser("rescore", help="warm-cache re-score of the committed SQuAD and HotpotQA evaluations")
    w.add_argument("--json", action="store_true", help="print one JSON object instead of tables")
    w.add_argument("--out", type=Path, help="also write the JSON result to this file")
    w.add_argument("--questions", type=int, default=200, help="questions per data set (as committed: 200)")
    g = sub.add_parser("generation", help="engines x bundled models: prompt/decode speed, RAG answer time, "
                                          "concurrency through the server, quality parity")
    g.add_argument("--json", action="store_true", help="print one JSON object instead of tables")
    g.add_argument("--out", type=Path, help="write the JSON here after every section; a re-run resumes from it")
    g.add_argument("--fresh", action="store_true", help="ignore what --out holds and start over")
    g.add_argument("--models-dir", type=Path, default=None, help="pulled models and the embedder (default: arag's model cache, Settings().models_dir)")
    g.add_argument("--models", default=",".join(("smollm2-135m", "qwen2.5-coder-0.5b", "qwen2.5-coder-1.5b")),
                   help="catalog models to measure (comma-separated; pulled first with `arag models pull`)")
    g.add_argument("--engines", default=None, help="llamacpp, transformers-float32, transformers-bfloat16 "
                                                   "(default: all, bf16 only where the CPU has it natively)")
    g.add_argument("--prompts", type=int, default=10, help="prompts per speed figure (p50 over these)")
    g.add_argument("--quality", type=int, default=40, help="seeded SQuAD test-split questions for quality parity")
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--concurrency", type=int, default=8, help="requests in the concurrency test (0 = skip)")
    g.add_argument("--concurrency-model", default="qwen2.5-coder-0.5b", help="reader for the concurrency test")
    g.add_argument("--concurrency-engines", default="llamacpp,transformers",
                   help="engines to serve the reader on in the concurrency test (transformers: its auto dtype)")
    g.add_argument("--emulate-avx2", action="store_true",
                   help="also run the transformers engines with oneDNN/ATen limited to AVX2 (a CPU without native bf16)")
    g.add_argument("--emulate-model", default="qwen2.5-coder-0.5b")
    g.add_argument("--emulate-prompts", type=int, default=2, help="prompts per figure in the emulated runs (bf16 is slow there)")
    g.add_argument("--emulate-quality", type=int, default=0, help="quality questions in the emulated runs")
    g.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ld = sub.add_parser("load", help="many clients against a real `arag serve` on loopback: refusals, latency, "
                                     "/healthz under load, RSS, decision ids readable afterwards")
    ld.add_argument("--json", action="store_true", help="print one JSON object instead of tables")
    ld.add_argument("--out", type=Path, help="also write the JSON result to this file")
    ld.add_argument("--data-dir", type=Path, default=None, help="the server's data directory (default: arag's, ARAG_DATA_DIR or ./.arag or the user data directory)")
    ld.add_argument("--collection", default="demo", help="collection to ask (default: demo, made by `arag demo`)")
    ld.add_argument("--clients", type=int, default=64)
    ld.add_argument("--duration", type=float, default=60.0, help="seconds per phase")
    ld.add_argument("--timeout", type=float, default=180.0, help="each client's request timeout in seconds")
    ld.add_argument("--stream", action=argparse.BooleanOptionalAction, default=True,
                    help="also run a phase of streaming chat clients (default: yes)")
    ld.add_argument("--ready-timeout", type=float, default=600.0, help="seconds to wait for the models to load")
    ld.add_argument("--work-dir", type=Path, default=None, help="server log (default bench-results/load)")
    ld.add_argument("--fake", action="store_true", help="fake deterministic models (adaptive_rag.testing.fake_server)")
    ld.add_argument("--fake-word-delay", type=float, default=0.05, help="with --fake: seconds per generated word")
    ld.add_argument("--replicas", type=int, default=1, help="servers sharing one PostgreSQL decision log (query phase only)")
    ld.add_argument("--decisions-url", default=None, help="with --replicas: the shared PostgreSQL decision log "
                                                          "(default: a private server from Debian's postgresql)")
    u = sub.add_parser("ui", help="the /ui inspector's server time: 1,000 decisions on one page, against the JSON list")
    u.add_argument("--json", action="store_true", help="print one JSON object instead of tables")
    u.add_argument("--out", type=Path, help="also write the JSON result to this file")
    u.add_argument("--decisions", type=int, default=1000)
    u.add_argument("--repeats", type=int, default=10)
    pr = sub.add_parser("probe", help="an answer probe read from the answer's own generation: added latency, "
                                      "agreement with a second pass, AUROC of both")
    pr.add_argument("--json", action="store_true", help="print one JSON object instead of tables")
    pr.add_argument("--out", type=Path, help="also write the JSON result to this file")
    pr.add_argument("--labels", type=Path, required=True, help="a `python -m eval.probe_labels` folder")
    pr.add_argument("--probe", required=True, help="a probe trained on it (`arag gatekeeper probe --fit-on train`)")
    pr.add_argument("--questions", type=int, default=100, help="dev questions of the folder")
    le = sub.add_parser("learning", help="the learned router on a collection its starting router never saw: the "
                                         "learning curve against the static router, the ceiling and the fixed actions")
    le.add_argument("--json", action="store_true", help="print one JSON object instead of tables")
    le.add_argument("--out", type=Path, help="also write the JSON result to this file")
    le.add_argument("--dataset", default="stream-squad", choices=("stream-squad", "stream-hotpotqa"))
    le.add_argument("--stream-labels", type=Path, required=True, help="panel labels of the stream split's run")
    ceiling = le.add_mutually_exclusive_group(required=True)
    ceiling.add_argument("--ceiling-labels", type=Path, help="panel labels of the ceiling split's run")
    ceiling.add_argument("--ceiling-first", type=int, help="train the ceiling router on the gold labels of the "
                                                           "stream's first N questions instead (N <= questions - last)")
    le.add_argument("--judgements", type=Path, required=True, help="judgements.jsonl of the stream run")
    le.add_argument("--stream-seed", type=int, default=0, help="the seed the stream was drawn with")
    le.add_argument("--cost-weight", type=float, default=0.1)
    le.add_argument("--judge-share", type=float, default=0.2, help="served answers judged (within the budget)")
    le.add_argument("--explore-share", type=float, default=0.1, help="questions where another action is explored")
    le.add_argument("--budget", type=float, default=0.10, help="learning spend at most this share of serving spend")
    le.add_argument("--window", type=int, default=50)
    le.add_argument("--last", type=int, default=150, help="the questions the targets are measured on")
    le.add_argument("--seeds", type=int, default=3, help="runs of the learning variants' random choices")
    ca = sub.add_parser("cache", help="the answer cache: a miss's added time and an exact hit's lookup with many "
                                      "entries (SQLite, PostgreSQL), exact hits through POST /v1/query")
    ca.add_argument("--json", action="store_true", help="print one JSON object instead of tables")
    ca.add_argument("--out", type=Path, help="also write the JSON result to this file")
    ca.add_argument("--entries", type=int, default=10_000, help="SQuAD dev questions stored as entries")
    ca.add_argument("--lookups", type=int, default=300, help="timed misses and hits per backend")
    ca.add_argument("--requests", type=int, default=20, help="demo questions through the server (0: skip)")
    ca.add_argument("--traffic", type=Path, help="instead: hits, wrong hits, cost and F1 on the question traffic "
                                                 "in this folder (eval/cache_data.py; eval/bench/cache_traffic.py)")
    ca.add_argument("--data-dir", type=Path, default=Path("."), help="with --traffic: a data directory holding "
                                                                     "the squad-dev and hotpotqa-train collections")
    ca.add_argument("--policy", default="always_rag", help="with --traffic: the policy that answers")
    ca.add_argument("--negatives", type=int, default=0, help="with --traffic: at most this many hard negatives (0: all)")
    ca.add_argument("--stream", type=int, default=200, help="with --traffic: questions in the mixed stream")
    ca.add_argument("--latency", type=int, default=15, help="with --traffic: originals timed without the generation cache")
    ca.add_argument("--target-error", type=float, default=None, help="with --traffic: ARAG_CACHE_TARGET_ERROR for the run")
    ca.add_argument("--rewrite", choices=("adapt", "check"), default=None, help="with --traffic: ARAG_CACHE_REWRITE")
    ca.add_argument("--same-question", choices=("off", "reader", "strong"), default=None,
                    help="with --traffic: ARAG_CACHE_SAME_QUESTION (the check before a near hit's rewrite)")
    ca.add_argument("--seed", type=int, default=0)
    ca.add_argument("--rows-out", type=Path, help="with --traffic: write every question's outcome here (JSON lines)")
    ex = sub.add_parser("exploration", help="user latency with background exploration on and off, real models")
    ex.add_argument("--json", action="store_true", help="print one JSON object instead of tables")
    ex.add_argument("--out", type=Path, help="also write the JSON result to this file")
    ex.add_argument("--data-dir", type=Path, required=True, help="a data directory holding --collection")
    ex.add_argument("--collection", default="demo")
    ex.add_argument("--requests", type=int, default=30, help="requests per block (bounded)")
    ex.add_argument("--rounds", type=int, default=2, help="off/on block pairs")
    ex.add_argument("--utilization", type=float, default=0.5, help="the share of time the server is meant to be busy")
    ex.add_argument("--explore-share", type=float, default=1.0, help="ARAG_EXPLORE_SHARE in the 'on' blocks")
    ex.add_argument("--warmup", type=int, default=4, help="answers timed one at a time to set the arrival rate")
    ex.add_argument("--timeout", type=float, default=300.0, help="a request's client timeout (s)")
    ex.add_argument("--ready-timeout", type=float, default=300.0)
    ex.add_argument("--seed", type=int, default=0)
    return ap


def _clean(obj: Any) -> Any:
    """NaN/inf are not JSON; they become null."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    return obj


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    if args.benchmark == "retrieval":
        from eval.bench import retrieval as bench
    elif args.benchmark == "query":
        from eval.bench import query as bench
    elif args.benchmark == "rescore":
        from eval.bench import rescore as bench
    elif args.benchmark == "generation":
        from eval.bench import generation as bench
    elif args.benchmark == "load":
        from eval.bench import load as bench
    elif args.benchmark == "ui":
        from eval.bench import ui as bench
    elif args.benchmark == "probe":
        from eval.bench import probe as bench
    elif args.benchmark == "learning":
        from eval.bench import learning as bench
    elif args.benchmark == "exploration":
        from eval.bench import exploration as bench
    elif args.benchmark == "cache" and args.traffic:
        from eval.bench import cache_traffic as bench
    elif args.benchmark == "cache":
        from eval.bench import cache as bench
    else:
        from eval.bench import ingest as bench
    result = bench.run(args)
    text = json.dumps(_clean(result), indent=2)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")
    print(text if args.json else bench.format_result(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
