"""Teach the learned router on the demo collection and ask the Jacksonville question before and
after: with the demo's panel (the 0.5B reader, no strong model), the shipped router sends "What
river runs alongside Jacksonville?" closed-book, and the small model answers "Mississippi" (the
St. Johns River is right).

In a data directory of its own: the demo collection (the bundled SQuAD sample), a learned router
`demo` on the shipped router, serving the demo's panel; the judge is the 1.5B model, loaded beside
it as a panel model that no action answers with (`--judge-model`).
- Before: the Jacksonville question under `adaptive`.
- Teaching: a fixed, seeded list of the sample's questions (TEACH drawn with `--seed`) outside
  the declared final splits, without the Jacksonville question and without any question about a
  river (so no paraphrase of it). Each is served under `adaptive`, its answer judged, one other
  action explored and judged (adaptive_rag/query/judge.py, explore.py), and the router learns
  after each. No gold answer is used anywhere in the teaching.
- After: the Jacksonville question again.

    python -m eval.teach_demo --data-dir /tmp/teach-demo --out eval/results/learning/demo_teach.json

Needs the reader and strong models (`arag models pull`); about 10 s per teaching question on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

JACKSONVILLE = "What river runs alongside Jacksonville?"
TEACH = 30


def teaching_questions(seed: int, n: int = TEACH) -> list[str]:
    """The sample's questions that no declared final split holds (eval/splits/final.json and
    final2.json: the sample's articles from SQuAD's test band are left out whole), without the
    Jacksonville question and without any about a river."""
    from adaptive_rag.demo import _sample
    from eval.final_split import final_ids

    held_out = final_ids("squad-dev", "final") | final_ids("squad-dev", "final2")
    questions = sorted({qa["question"].strip() for article in _sample()["data"] for p in article["paragraphs"]
                        for qa in p["qas"] if qa["id"] not in held_out})
    kept = [q for q in questions if q != JACKSONVILLE and "river" not in q.lower()]
    return random.Random(seed).sample(kept, n)


def _ask(engine, question: str) -> dict:
    d = engine.answer("demo", question, policy="adaptive").to_dict()
    stage = next(s for s in d["stages"] if s["name"] == "learned_router")
    return {"question": question, "action": stage["outcome"], "route": d["route"], "answer": d["answer"],
            "router_version": stage["signals"]["router_version"],
            "probabilities": {a: round(p, 4) for a, p in stage["signals"]["probabilities"].items()}}


def run(args) -> dict:
    from adaptive_rag.models.embedder import load_embedder
    from adaptive_rag.query.builder import build_engine
    from adaptive_rag.query.explore import explore
    from adaptive_rag.query.judge import judge_and_record, panel_roles
    from adaptive_rag.settings import Settings
    from adaptive_rag.store import open_store
    from eval.bench.common import machine_info
    from gatekeeper.router_learning import action_of, learn
    from ingest.pipeline import Ingestor
    from ingest.sources import read_source

    settings = Settings(data_dir=args.data_dir, routers={"panel": "learned:demo"}, strong_model=None,
                        panel=[args.judge_model])
    store = open_store(settings)
    Ingestor(settings, store, load_embedder(settings)).run("demo", read_source("squad-sample", settings))
    store.close()
    engine = build_engine(settings)
    router, log = engine.routers["panel"], engine.decision_store
    rng = random.Random(args.seed)
    before = _ask(engine, JACKSONVILLE)
    print(f"before: {before['action']} -> {before['answer']!r}", file=sys.stderr)
    taught, started = [], time.perf_counter()
    for i, question in enumerate(teaching_questions(args.seed, args.questions), 1):
        served = engine.answer("demo", question, policy="adaptive").to_dict()
        action = action_of(served, panel_roles(engine))
        row = {"question": question, "action": action, "answer": served["answer"]}
        judged = judge_and_record(engine, served, action, args.judge_model) if action not in (None, "abstain") else None
        if judged is not None and judged[1] is not None:
            row["judge_p_correct"] = round(judged[1]["p_correct"], 4)
        explored = explore(engine, router, served, rng, judge_model=args.judge_model)
        if explored is not None:
            row["explored"] = {"action": explored["action"], "p_correct": round(explored["p_correct"], 4),
                               "answer": explored["detail"]["answer"]}
        learn(log, router)
        taught.append(row)
        print(f"  {i}/{args.questions} {action} judged {row.get('judge_p_correct')}; explored "
              f"{row.get('explored', {}).get('action')} {row.get('explored', {}).get('p_correct')}", file=sys.stderr)
    after = _ask(engine, JACKSONVILLE)
    print(f"after: {after['action']} -> {after['answer']!r}", file=sys.stderr)
    return {"machine": machine_info(), "before": before, "after": after, "taught": taught,
            "teaching_s": round(time.perf_counter() - started, 1), "router_version": router.version,
            "learning_spend": log.learning_spend(0), "seed": args.seed,
            "command": "python -m eval.teach_demo " + " ".join(sys.argv[1:])}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m eval.teach_demo", description=__doc__.split("\n")[0])
    ap.add_argument("--data-dir", type=Path, required=True, help="a data directory of its own (it is written)")
    ap.add_argument("--judge-model", default="qwen2.5-coder-1.5b", help="the judge, loaded beside the demo's panel")
    ap.add_argument("--questions", type=int, default=TEACH)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=None)
    result = run(ap.parse_args(argv))
    text = json.dumps(result, indent=2)
    if ap.parse_args(argv).out:
        Path(ap.parse_args(argv).out).write_text(text + "\n")
    print(json.dumps({k: result[k] for k in ("before", "after", "router_version", "teaching_s")}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
