"""Where `arag calibrate` gets per-question outcomes from (see eval/replay.py for their shape)."""

from __future__ import annotations

import json
from pathlib import Path

from adaptive_rag.errors import UserError
from eval import replay
from eval.runner import load_records
from gatekeeper.artifact import gatekeepers_dir, load_gatekeeper
from gatekeeper.features import answer_signals


def _probes(questions: list[replay.QuestionOutcomes], gk) -> None:
    """Calibrated P(correct) of every question's draft and RAG answer (also where the recorded
    adaptive run never drafted or never ran RAG), from the recorded signals."""
    for q in questions:
        q.draft_first = "probe" in gk.meta["feature_groups"]
        cb, rag = q.routes["closed_book"], q.routes["rag"]
        q.p_draft = gk.draft_calibrator(answer_signals(cb.signals, cb.unanswerable))
        q.p_rag = gk.rag_calibrator(answer_signals(rag.signals, rag.unanswerable))


def from_eval_run(run_dir: Path, settings) -> list[replay.QuestionOutcomes]:
    path = run_dir / "records.jsonl"
    if not path.is_file():
        raise UserError(f"{path} not found (run `arag eval` with closed_book, always_rag, always_lc and adaptive)")
    records = load_records(path)
    labels = {(r.get("router") or {}).get("gatekeeper") for r in records} - {None}
    if len(labels) != 1:
        raise UserError(f"{path}: needs adaptive records from exactly one gatekeeper (found {sorted(labels) or 'none'})")
    name, _, version = labels.pop().partition("@v")
    gk = load_gatekeeper(settings.data_dir, name, int(version))
    questions = [q for q in replay.from_records(records) if q.probs]
    _probes(questions, gk)
    return questions


def from_artifact(settings, name: str) -> list[replay.QuestionOutcomes]:
    gk = load_gatekeeper(settings.data_dir, name)
    path = gatekeepers_dir(settings.data_dir) / name / f"v{gk.meta['version']}" / "heldout.jsonl"
    if not path.is_file():
        raise UserError(f"{path} not found (retrain the gatekeeper with this version)")
    questions = []
    for line in path.read_text().splitlines():
        row = json.loads(line)
        routes = {route: replay.RouteOutcome(o["f1"], o["tokens"], o.get("cost") or 0.0, o.get("signals") or {},
                                             bool(o.get("unanswerable"))) if o else None
                  for route, o in row["outcomes"].items()}
        questions.append(replay.QuestionOutcomes(row["id"], routes, row["probabilities"], row["p_draft"], row["p_rag"],
                                                 draft_first="probe" in gk.meta["feature_groups"]))
    unrun = {route: sum(1 for q in questions if q.routes.get(route) is None) for route in replay.ROUTE_OF_POLICY.values()}
    if any(unrun.values()):
        import sys

        print("not run during labelling (a cheaper route was right): "
              + ", ".join(f"{route} for {n} questions" for route, n in unrun.items() if n)
              + "; a replayed decision that needs one leaves its question out (never counted as wrong)", file=sys.stderr)
    return questions
