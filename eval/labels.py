"""Training labels for the gatekeeper from outcomes: each question is answered by the routes
cheapest first (closed-book, RAG, long context) through the cached engine, scored against gold,
and labelled with the cheapest route that answered correctly (Adaptive-RAG style), or `none`.

Long context (seconds per question on a CPU) only runs when neither cheaper route was correct,
unless `all_routes`: the label is the same either way, but the per-route outcomes of long context
are then recorded for every question (multi-label use). A route not run is `null` in `outcomes`.
`labels.jsonl` is appended and fsynced per question, so an interrupted run resumes.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Callable, Iterable

from adaptive_rag.query.engine import QueryEngine
from eval.datasets import EvalSample
from eval.metrics import exact_match, f1_score
from eval.runner import RecordWriter, load_records
from gatekeeper.features import router_inputs

CORRECT_F1 = 0.5  # an answer counts as correct at token F1 >= 0.5 against the best gold answer
ROUTE_POLICIES = (("closed_book", "closed_book"), ("rag", "always_rag"), ("long_context", "always_lc"))


def outcome(sample: EvalSample, decision: dict, route: str) -> dict:
    stage = next(s for s in decision["stages"] if s["name"] == route)
    answer = decision["answer"] or ""
    f1 = f1_score(answer, sample.answers)
    return {"answer": answer, "f1": f1, "em": exact_match(answer, sample.answers), "correct": f1 >= CORRECT_F1,
            "cost": decision["cost"],
            "tokens": decision["usage"]["total_tokens"], "unanswerable": stage["outcome"] == "unanswerable",
            "signals": {k: v for k, v in stage["signals"].items() if k != "generation_ms"}}


def cheapest_correct(outcomes: dict) -> str:
    for route, _ in ROUTE_POLICIES:
        if outcomes.get(route) and outcomes[route]["correct"]:
            return route
    return "none"


def label_sample(engine: QueryEngine, sample: EvalSample, all_routes: bool = False, split: str | None = None) -> dict:
    outcomes: dict[str, dict | None] = {}
    for route, policy in ROUTE_POLICIES:
        if route == "long_context" and not all_routes and cheapest_correct(outcomes) != "none":
            outcomes[route] = None
            continue
        decision = engine.answer(sample.collection, sample.question, policy=policy, use_cache=False).to_dict()
        outcomes[route] = outcome(sample, decision, route)
    retrieval = engine.retriever.search(sample.collection, sample.question, k=engine.top_k, components=True)
    inputs = router_inputs(sample.question, retrieval, probe=outcomes["closed_book"]["signals"])
    return {"id": sample.id, "question": sample.question, "collection": sample.collection, "gold": list(sample.answers),
            "split": split, "inputs": inputs, "outcomes": outcomes, "label": cheapest_correct(outcomes)}


def label(engine: QueryEngine, samples: Iterable[EvalSample], out_dir: Path, all_routes: bool = False,
          progress: Callable[[int], None] | None = None, split: str | None = None) -> list[dict]:
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "labels.jsonl"
    rows = load_records(path)
    done = {(r["collection"], r["id"]) for r in rows}
    quiet = copy.copy(engine)
    quiet.log = None  # labelling answers are not user decisions
    with RecordWriter(path, sync_seconds=0.0) as writer:  # a label costs seconds: fsync each
        for sample in samples:
            if (sample.collection, sample.id) not in done:
                row = label_sample(quiet, sample, all_routes, split)
                writer.append(row)
                rows.append(row)
            if progress:
                progress(1)
    return rows


def load_labels(directories: Iterable[Path]) -> list[dict]:
    rows = []
    for directory in directories:
        path = directory / "labels.jsonl" if directory.is_dir() else directory
        if not path.is_file():
            from adaptive_rag.errors import UserError

            raise UserError(f"{path} not found (run `arag gatekeeper label` first)")
        rows.extend(load_records(path))
    return rows
