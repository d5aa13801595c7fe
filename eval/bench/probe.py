"""What an answer probe costs when the engine reads it from the answer's own generation, against
the second forward pass over prompt + answer that eval/probe_labels.py used, and whether the two
readings agree.

Per dev question of a probe-labels folder (questions the probe never trained on when it was
trained with `--fit-on train`): hybrid retrieval as the labels had it, then, in alternating
order, the reader's RAG answer without the probe and with it attached (the same greedy answer),
then one second pass (TransformersLM.hidden_states) over the prompt and that answer. Reported:
- added latency of the in-generation probe: paired (with - without) generation time, p50, and its
  share of the RAG answer's time; the second pass's time and share for comparison;
- agreement: the share of identical answers, |P(wrong) in-generation - P(wrong) second pass|;
- AUROC of both readings for "the answer is wrong" (the labels' F1 < 0.5) with paired-bootstrap
  intervals, and their difference; the in-generation P(wrong)'s calibration (ECE, 10 bins).

    python -m eval.bench probe --labels eval/results/probes/squad-dev --probe squad-answer-train --questions 100
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from eval.bench.common import log, machine_info, percentiles


def run(args) -> dict[str, Any]:
    from adaptive_rag.models.embedder import load_embedder
    from adaptive_rag.models.transformers_lm import TransformersLM
    from adaptive_rag.query import answer_routes
    from adaptive_rag.retrieve import Retriever
    from adaptive_rag.settings import Settings
    from adaptive_rag.store import open_store
    from eval import probe_report
    from eval.probe_labels import reader
    from gatekeeper import answer_probe

    settings = Settings()
    labels = Path(args.labels)
    meta = json.loads((labels / "meta.json").read_text())
    rows = [json.loads(line) for line in (labels / "labels.jsonl").read_text().splitlines() if line.strip()]
    is_train = probe_report.splits(meta["dataset"], [r["id"] for r in rows])
    dev = [r for r, train in zip(rows, is_train) if not train][: args.questions]
    probe = answer_probe.load(settings.data_dir, args.probe)
    plain = reader(settings)
    probe.check_serves(meta["model_sha256"], plain.engine, plain.dtype)
    probed = TransformersLM(plain.name, plain.model_file, settings.models_dir, plain.context_window, plain.dtype)
    probed.attach_probe(probe)
    store = open_store(settings)
    retriever = Retriever(settings, store, load_embedder(settings))
    collection = {s.id: s.collection for s in _samples(meta["dataset"], settings)}
    log(f"{len(dev)} dev questions; probe {args.probe} ({probe.kind}, layer {probe.layer}); {plain.label}")
    out = []
    try:
        warm = retriever.search(collection[dev[0]["id"]], dev[0]["question"], k=meta["top_k"]).hits
        for lm in (plain, probed):  # weights and kernels warm before anything is timed
            answer_routes.rag(lm, dev[0]["question"], warm, meta["max_new_tokens"])
        for n, row in enumerate(dev):
            hits = retriever.search(collection[row["id"]], row["question"], k=meta["top_k"]).hits
            timed = {}
            for name in (("plain", "probed") if n % 2 == 0 else ("probed", "plain")):
                lm = plain if name == "plain" else probed
                result = answer_routes.rag(lm, row["question"], hits, meta["max_new_tokens"])
                timed[name] = result
            text = timed["probed"].generation.text
            states = plain.hidden_states(timed["probed"].messages, text, [probe.layer])
            state = states[probe.kind]
            out.append({"id": row["id"], "wrong": not row["correct"], "same_answer": text == row["answer"]
                        and timed["plain"].generation.text == text,
                        "p_inline": timed["probed"].generation.extra.get(probe.signal),
                        "p_second_pass": None if state is None else probe.p_wrong(state[0]),
                        "plain_ms": timed["plain"].generation.latency_ms,
                        "probed_ms": timed["probed"].generation.latency_ms,
                        "read_ms": timed["probed"].generation.extra.get("probe_ms"),
                        "second_pass_ms": states["latency_ms"]})
            if (n + 1) % 10 == 0:
                log(f"{n + 1}/{len(dev)}")
    finally:
        store.close()
    return {"machine": machine_info(), "command": "python -m eval.bench " + " ".join(args.argv),
            "date": time.strftime("%Y-%m-%d"), "labels": str(labels), "probe": args.probe, "kind": probe.kind,
            "layer": probe.layer, "engine": plain.label, "model": plain.name, **summarise(out), "questions": out}


def _samples(dataset: str, settings):
    from eval.datasets import load_eval_set

    return load_eval_set(dataset, settings, "dev").samples


def summarise(out: list[dict]) -> dict[str, Any]:
    """Latency and agreement figures of the per-question rows (see the module docstring)."""
    from eval.probe_report import bootstrap

    added = [r["probed_ms"] - r["plain_ms"] for r in out]
    answer_ms = float(np.median([r["plain_ms"] for r in out]))
    both = [r for r in out if r["p_inline"] is not None and r["p_second_pass"] is not None]
    wrong = np.array([r["wrong"] for r in both])
    scores = {"in_generation": np.array([r["p_inline"] for r in both]),
              "second_pass": np.array([r["p_second_pass"] for r in both])}
    gap = np.abs(scores["in_generation"] - scores["second_pass"])
    aurocs = bootstrap(scores, wrong, "second_pass") if len(set(wrong.tolist())) == 2 else {}
    from gatekeeper.calibration import reliability

    ece = reliability(scores["in_generation"], wrong).ece if both else None
    return {"n": len(out), "same_answer_share": float(np.mean([r["same_answer"] for r in out])),
            "answer_ms_p50": answer_ms,
            "added": {**percentiles(added), "share_of_answer_p50": float(np.median(added)) / answer_ms},
            "read_ms": percentiles([r["read_ms"] for r in out if r["read_ms"] is not None]),
            "second_pass": {**percentiles([r["second_pass_ms"] for r in out]),
                            "share_of_answer_p50": float(np.median([r["second_pass_ms"] for r in out])) / answer_ms},
            "p_gap": {"median": float(np.median(gap)), "p95": float(np.percentile(gap, 95)), "max": float(gap.max())},
            "wrong": int(wrong.sum()), "auroc": aurocs, "ece_in_generation": ece}


def format_result(r: dict[str, Any]) -> str:
    a, s = r["added"], r["second_pass"]
    cpu = r['machine']['cpu']
    lines = [f"machine: {cpu.get('model')}, {cpu.get('physical_cores')} cores, flags {' '.join(cpu.get('flags', []))}",
             f"probe {r['probe']} ({r['kind']}, layer {r['layer']}) on {r['model']} ({r['engine']}), {r['n']} dev questions, "
             f"{r['wrong']} wrong answers; identical answers with and without the probe: {r['same_answer_share']:.0%}",
             f"RAG answer p50 {r['answer_ms_p50']:.0f} ms",
             f"in-generation probe: added p50 {a['p50_ms']:+.1f} ms ({a['share_of_answer_p50']:+.1%} of the answer), "
             f"p95 {a['p95_ms']:+.1f} ms; reading the probe itself p50 {r['read_ms']['p50_ms']:.2f} ms",
             f"second pass (as the labels did): p50 {s['p50_ms']:.0f} ms ({s['share_of_answer_p50']:.0%} of the answer)",
             f"|P(wrong) in-generation - second pass|: median {r['p_gap']['median']:.4f}, p95 {r['p_gap']['p95']:.4f}, "
             f"max {r['p_gap']['max']:.4f}"]
    if r.get("ece_in_generation") is not None:
        lines.append(f"ECE of the in-generation P(wrong) (10 bins): {r['ece_in_generation']:.3f}")
    for name, row in r["auroc"].items():
        diff = f", difference {row['diff_vs_second_pass']:+.3f} [{row['diff_ci'][0]:+.3f}, {row['diff_ci'][1]:+.3f}]" \
            if "diff_ci" in row else ""
        lines.append(f"AUROC {name}: {row['auroc']:.3f} [{row['ci'][0]:.3f}, {row['ci'][1]:.3f}]{diff}")
    return "\n".join(lines)
