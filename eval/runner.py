"""Run policies side by side over an evaluation set and write `records.jsonl`, one line per
(question, policy), appended and fsynced as it goes: an interrupted run resumes where it
stopped (pairs already in the file are skipped), and with the generation cache a re-run calls
no model at all.

Per record: route, answer, gold, EM, F1, Ragas ROUGE-L and string similarity, Ragas ID-based
context precision/recall of the cited documents against the gold documents, tokens, cost, LM calls, retrieval calls, latency (the
original model time for cached generations plus retrieval), decision id.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Callable, Iterable, Sequence

from adaptive_rag.query.engine import QueryEngine
from eval.datasets import EvalSample
from eval.metrics import exact_match, f1_score
from eval.mixed import ABSTAIN, abstained

LM_STAGES = ("closed_book", "rag", "long_context", "multi_step")
VERIFY_STAGES = ("verify", "self_consistency", "knn_router", "verify_probe", "verify_plan")  # their signals are kept for eval/verification.py


def record_for(sample: EvalSample, decision: dict, judge=None, score_cache=None) -> dict:
    stages = decision["stages"]
    from eval import ragas_metrics

    cited = list(dict.fromkeys(c["doc_id"] for c in decision["citations"]))
    answer = decision["answer"] or ""
    abstain = abstained(decision["route"], answer)
    if sample.answers == (ABSTAIN,):  # mixed: right only when the policy said the collection does not answer it
        em = f1 = float(abstain)
        ragas = {"rouge_l": None, "string_similarity": None, "context_precision": None, "context_recall": None}
    else:
        em, f1 = exact_match(answer, sample.answers), f1_score(answer, sample.answers)
        ragas = ragas_metrics.score(answer, sample.answers, cited, sample.gold_doc_ids, score_cache)
    def hop(s, kind):
        return s["name"] == "hop" and s["signals"].get("kind") == kind

    hop_calls = [s for s in stages if hop(s, "generate")]
    searches = [s for s in stages if s["name"] == "retrieve" or hop(s, "retrieve")]  # in the order they ran
    latency = sum(s["signals"].get("generation_ms", 0.0) for s in stages if s["name"] in LM_STAGES)
    latency += sum(s["signals"].get("generation_ms", 0.0) for s in hop_calls)
    latency += sum(s["latency_ms"] for s in searches)
    retrieved = list(dict.fromkeys(d for s in searches for d in s["signals"].get("doc_ids") or ()))
    return {
        "id": sample.id, "question": sample.question, "policy": decision["policy"], "route": decision["route"],
        "answer": answer, "gold": list(sample.answers), "em": em, "f1": f1, **ragas,
        **({"kind": sample.kind} if sample.kind else {}), "abstained": abstain,
        "input_tokens": decision["usage"]["input_tokens"], "output_tokens": decision["usage"]["output_tokens"],
        "total_tokens": decision["usage"]["total_tokens"], "cost": decision["cost"],
        "lm_calls": sum(1 for s in stages if s["name"] in LM_STAGES) + len(hop_calls),
        "retrieval_calls": len(searches),
        # every document any retrieval of the decision returned, and whether they hold all gold ones
        "retrieved_docs": retrieved,
        "gold_all_retrieved": set(sample.gold_doc_ids) <= set(retrieved) if sample.gold_doc_ids else None,
        "latency_ms": latency, "decision_id": decision["id"],
        "signals": {s["name"]: s["signals"] for s in stages if s["name"] in LM_STAGES + VERIFY_STAGES},
        "router": _router(stages),
        **(judge.score(sample.question, answer, sample.answers[0], [c.get("text", "") for c in decision["citations"]])
           if judge is not None else {}),
    }


def _router(stages: list[dict]) -> dict | None:
    """The gatekeeper's probabilities and the probes' P(correct), for replaying adaptive policies."""
    out = {}
    for stage in stages:
        if stage["name"] == "gatekeeper":
            out["probabilities"], out["gatekeeper"] = stage["signals"]["probabilities"], stage["model"]
        elif stage["name"] == "adaptive_draft":
            out["p_draft_correct"] = stage["signals"]["p_draft_correct"]
        elif stage["name"] == "adaptive_escalation":
            out["p_rag_correct"] = stage["signals"]["p_rag_correct"]
        elif stage["name"] in ("panel_router", "learned_router"):
            out["panel"] = {"probabilities": stage["signals"]["probabilities"], "costs": stage["signals"]["costs"],
                            "cost_weight": stage["thresholds"]["adaptive_cost_weight"], "action": stage["outcome"]}
    return out or None


class RecordWriter:
    """Appends JSON lines. Each line is flushed to the OS at once, so a killed process loses at most
    the line being written; fsync (against a machine crash) runs at most once per `sync_seconds`
    and at close, because an fsync per answer was a large share of a cached re-score."""

    def __init__(self, path: Path, sync_seconds: float = 1.0):
        self._handle = open(path, "a", encoding="utf-8")
        self._sync_seconds = sync_seconds
        self._synced = time.monotonic()

    def append(self, record: dict) -> None:
        self._handle.write(json.dumps(record) + "\n")
        self._handle.flush()
        if time.monotonic() - self._synced >= self._sync_seconds:
            self.sync()

    def sync(self) -> None:
        os.fsync(self._handle.fileno())
        self._synced = time.monotonic()

    def close(self) -> None:
        self._handle.flush()
        self.sync()
        self._handle.close()

    def __enter__(self) -> "RecordWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def load_records(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    records = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            break  # a line cut by a kill: everything after it is redone
    return records


def run(engine: QueryEngine, samples: Iterable[EvalSample], policies: Sequence[str], out_dir: Path,
        progress: Callable[[int], None] | None = None, fresh: bool = False, judge=None,
        score_cache=None) -> list[dict]:
    """`fresh` re-scores every pair (cheap with the generation cache) instead of resuming.
    `score_cache` (eval.cache.GenerationCache) memoises the per-answer Ragas scores."""
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "records.jsonl"
    records = [] if fresh else load_records(path)
    with open(path, "w", encoding="utf-8") as handle:  # rewrite the intact prefix, then append
        for r in records:
            handle.write(json.dumps(r) + "\n")
    done = {(r["id"], r["policy"]) for r in records}
    with RecordWriter(path) as writer:
        for sample in samples:
            for policy in policies:
                if (sample.id, policy) not in done:
                    decision = engine.answer(sample.collection, sample.question, policy=policy, use_cache=False).to_dict()
                    record = record_for(sample, decision, judge, score_cache)
                    writer.append(record)
                    records.append(record)
                if progress:
                    progress(1)
    return records
