"""The answer cache on question traffic (`python -m eval.bench cache --traffic DIR --data-dir D`):
hits, wrong hits, cost and F1 against the same questions with the cache off, in the same run.

Traffic (built once by eval/cache_data.py, committed in DIR): strong-model paraphrases of SQuAD
dev questions and hard negatives (look-alike questions with different answers). One policy
(`--policy`, default always_rag) answers everything; each part starts from an empty cache
(ARAG_CACHE=semantic, a fresh decision log) and the thresholds learn as they go.

- **Look-alikes**: the earlier question of every pair is asked first (a miss: its answer is
  cached). Then the paraphrases and the hard negatives, shuffled together, are each answered twice:
  with the cache off (`cache: false`, the full answer) and on. A *wrong hit* is a hard negative
  served from the cache (exact hit or rewrite) whose answer has F1 < 0.5 against its own gold. Its
  rate is over all hard negatives, with the exact 95% upper bound (Clopper-Pearson). Paraphrases:
  the share served from the cache, and the F1 of those served against their full answers (paired
  bootstrap).
- **Stream**: `--stream` questions in arrival order: 70% new SQuAD dev questions (among them the
  originals of the stream's paraphrases), 15% paraphrases (each after its original) and 15% exact
  repeats of an earlier question. Cost per query and F1 with the cache on against off, paired.
- **Latency** (`--latency N`): on models without the generation cache, N originals answered in
  full and then their paraphrases: a served rewrite's p50 against a full answer's, and exact hits.

Generations go through the eval generation cache (D/eval_cache.sqlite), so a rerun replays what
was computed (resumable); the latency part never reads it. Figures: docs/performance.md.
"""

from __future__ import annotations

import json
import random
import tempfile
import time
from pathlib import Path
from typing import Any

from eval.bench.common import log, machine_info, percentiles

CORRECT_F1 = 0.5
SERVED = ("exact_hit", "near_hit")


def clopper_pearson_upper(k: int, n: int, level: float = 0.95) -> float:
    """The exact two-sided `level` interval's upper end for k successes in n trials."""
    from scipy.stats import beta

    return 1.0 if k >= n else float(beta.ppf(1 - (1 - level) / 2, k + 1, n - k))


def _engine(settings, tmp: Path, generation_cache: bool):
    """An engine with the semantic cache on a fresh decision log in `tmp`; with the eval
    generation cache (replays) or without (timings). Returns (engine, cache or None)."""
    from adaptive_rag.decision_store import open_decision_store
    from adaptive_rag.query.builder import build_engine

    s = settings.model_copy(update={"cache": "semantic", "cache_scope": "key"})
    if generation_cache:
        from eval.cli import cached_engine

        engine, cache = cached_engine(s, {})
    else:
        engine, cache = build_engine(s), None
    engine.decision_store = open_decision_store(None, tmp)
    return engine, cache


def _cache_stage(decision) -> dict:
    stage = next((s for s in decision.stages if s.name == "cache"), None)
    if stage is None:
        return {}
    return {"lookup": stage.signals.get("lookup"), "similarity": stage.signals.get("similarity"),
            "threshold": stage.thresholds.get("entry_similarity"), "threshold_now": stage.signals.get("threshold_now"),
            **{k: stage.signals.get(k) for k in ("earlier_question", "earlier_answer", "rewrite_answer", "agreement",
                                                 "p_same_question")}}


def _ask(engine, collection: str, question: str, policy: str, use_cache: bool, answers) -> dict:
    from eval.metrics import f1_score

    d = engine.answer(collection, question, policy=policy, use_cache=use_cache)
    out = {"answer": d.answer, "f1": f1_score(d.answer or "", answers), "cost": d.cost,
           "tokens": d.usage.total_tokens, "latency_ms": d.latency_ms, **_cache_stage(d)}
    if out.get("rewrite_answer") is not None:  # what the rewrite said, served or not
        out["rewrite_f1"] = f1_score(out["rewrite_answer"], answers)
    return out


def look_alikes(engine, paraphrases: list[dict], negatives: list[dict], policy: str, seed: int) -> dict[str, Any]:
    earlier = list(dict.fromkeys([(r["collection"], r["original"], tuple(r["answers"])) for r in paraphrases] +
                                 [(r["collection"], r["earlier"], tuple(r["earlier_answers"])) for r in negatives]))
    started = time.time()
    for n, (collection, question, answers) in enumerate(earlier, 1):
        _ask(engine, collection, question, policy, True, answers)
        if n % 50 == 0:
            log(f"  earlier questions {n}/{len(earlier)} ({time.time() - started:.0f} s)")
    asked = [("paraphrase", r["collection"], r["paraphrase"], r["answers"], r) for r in paraphrases] + \
            [("negative", r["collection"], r["question"], r["answers"], r) for r in negatives]
    random.Random(seed).shuffle(asked)
    rows = []
    for n, (kind, collection, question, answers, source) in enumerate(asked, 1):
        full = _ask(engine, collection, question, policy, False, answers)
        cached = _ask(engine, collection, question, policy, True, answers)
        rows.append({"kind": kind, "question": question, "full": full, "cached": cached,
                     "pair_kind": source.get("kind", "paraphrase"), "jaccard": source.get("jaccard")})
        if n % 50 == 0:
            log(f"  look-alikes {n}/{len(asked)} ({time.time() - started:.0f} s)")
    return {"earlier_questions": len(earlier), "rows": rows, **summarise_look_alikes(rows)}


def summarise_look_alikes(rows: list[dict]) -> dict[str, Any]:
    from eval.stats import paired_bootstrap
    from gatekeeper.calibration import auroc

    negatives = [r for r in rows if r["kind"] == "negative"]
    served_neg = [r for r in negatives if r["cached"]["lookup"] in SERVED]
    wrong = [r for r in served_neg if r["cached"]["f1"] < CORRECT_F1]
    worse = [r for r in served_neg if r["cached"]["f1"] < CORRECT_F1 <= r["full"]["f1"]]
    # had every rewrite that did not refuse been served (no agreement rule): an estimate from the
    # same run (the thresholds learned from the verdicts the rule gave)
    unruled = [r for r in negatives if r["cached"].get("rewrite_answer") is not None
               and r["cached"]["lookup"] in ("near_hit", "near_declined") and r["cached"].get("agreement") is not None]
    para = [r for r in rows if r["kind"] == "paraphrase"]
    served_para = [r for r in para if r["cached"]["lookup"] in SERVED]
    out: dict[str, Any] = {
        "hard_negatives": {
            "n": len(negatives), "served_from_cache": len(served_neg), "wrong_hits": len(wrong),
            "wrong_hit_rate": len(wrong) / len(negatives) if negatives else None,
            "wrong_hit_rate_95_upper": clopper_pearson_upper(len(wrong), len(negatives)) if negatives else None,
            "wrong_where_full_answer_right": len(worse),
            "without_agreement_rule": {"would_serve": len(unruled) + sum(r["cached"]["lookup"] == "exact_hit" for r in negatives),
                                       "wrong": sum(r["cached"]["rewrite_f1"] < CORRECT_F1 for r in unruled)},
            "outcomes": _count(r["cached"]["lookup"] for r in negatives),
            "by_pair_kind": {k: {"n": sum(r["pair_kind"] == k for r in negatives),
                                 "wrong_hits": sum(r["pair_kind"] == k for r in wrong)}
                             for k in sorted({r["pair_kind"] for r in negatives})}},
        "paraphrases": {
            "n": len(para), "served_from_cache": len(served_para),
            "served_share": len(served_para) / len(para) if para else None,
            "outcomes": _count(r["cached"]["lookup"] for r in para)}}
    if served_para:
        ci = paired_bootstrap({"served": [r["cached"]["f1"] for r in served_para],
                               "full": [r["full"]["f1"] for r in served_para]}, reference="full")
        out["paraphrases"]["served_f1"] = {"cached": ci["served"]["mean"], "full": ci["full"]["mean"],
                                           "diff": ci["served"]["diff"], "diff_ci": ci["served"]["diff_ci"]}
    sims = [(r["cached"]["similarity"], r["kind"] == "paraphrase") for r in rows
            if r["cached"].get("similarity") is not None]
    if sims and len({y for _, y in sims}) == 2:
        out["similarity_auroc_paraphrase_vs_negative"] = auroc([s for s, _ in sims], [y for _, y in sims])
    return out


def _count(values) -> dict[str, int]:
    counts: dict[str, int] = {}
    for v in values:
        counts[str(v)] = counts.get(str(v), 0) + 1
    return dict(sorted(counts.items()))


def build_stream(paraphrases: list[dict], new_pool: list[dict], size: int, seed: int) -> list[dict]:
    """`size` questions: 70% new (the paraphrases' originals among them), 15% paraphrases placed
    after their originals, 15% exact repeats of an earlier question."""
    rng = random.Random(seed)
    n_para = n_rep = round(size * 0.15)
    n_new = size - n_para - n_rep
    chosen = rng.sample(paraphrases, n_para)
    originals = [{"collection": r["collection"], "question": r["original"], "answers": r["answers"], "kind": "new"}
                 for r in chosen]
    taken = {r["original"] for r in chosen} | {r["paraphrase"] for r in chosen}
    others = [r for r in new_pool if r["question"] not in taken][: n_new - len(originals)]
    stream = originals + [{**r, "kind": "new"} for r in others]
    rng.shuffle(stream)
    for r in chosen:  # after its original, somewhere later
        at = next(i for i, s in enumerate(stream) if s["question"] == r["original"])
        stream.insert(rng.randint(at + 1, len(stream)), {"collection": r["collection"], "question": r["paraphrase"],
                                                         "answers": r["answers"], "kind": "paraphrase"})
    for _ in range(n_rep):
        at = rng.randint(1, len(stream))
        earlier = rng.choice([s for s in stream[:at] if s["kind"] == "new"])
        stream.insert(at, {**earlier, "kind": "repeat"})
    return stream


def stream_run(engine, stream: list[dict], policy: str) -> dict[str, Any]:
    from eval.stats import paired_bootstrap

    rows, started = [], time.time()
    for n, q in enumerate(stream, 1):
        off = _ask(engine, q["collection"], q["question"], policy, False, q["answers"])
        on = _ask(engine, q["collection"], q["question"], policy, True, q["answers"])
        rows.append({"kind": q["kind"], "question": q["question"], "off": off, "on": on})
        if n % 50 == 0:
            log(f"  stream {n}/{len(stream)} ({time.time() - started:.0f} s)")
    cost = paired_bootstrap({"on": [r["on"]["cost"] for r in rows], "off": [r["off"]["cost"] for r in rows]},
                            reference="off")
    f1 = paired_bootstrap({"on": [r["on"]["f1"] for r in rows], "off": [r["off"]["f1"] for r in rows]},
                          reference="off")
    off_cost = cost["off"]["mean"]
    return {"n": len(rows), "kinds": _count(r["kind"] for r in rows),
            "outcomes": {k: _count(r["on"]["lookup"] for r in rows if r["kind"] == k) for k in ("new", "paraphrase", "repeat")},
            "cost_per_query": {"on": cost["on"]["mean"], "off": off_cost, "diff": cost["on"]["diff"],
                               "diff_ci": cost["on"]["diff_ci"],
                               "reduction": 1 - cost["on"]["mean"] / off_cost if off_cost else None,
                               "reduction_ci": [1 - (off_cost + hi) / off_cost for hi in reversed(cost["on"]["diff_ci"])]
                               if off_cost else None},
            "f1": {"on": f1["on"]["mean"], "off": f1["off"]["mean"], "diff": f1["on"]["diff"],
                   "diff_ci": f1["on"]["diff_ci"]},
            "rows": rows}


def latency(settings, paraphrases: list[dict], n: int, policy: str, tmp: Path) -> dict[str, Any]:
    """Full answers, served rewrites and exact hits timed on models without the generation cache."""
    engine, _ = _engine(settings, tmp, generation_cache=False)
    full, rewrite, exact, declined = [], [], [], 0
    try:
        for r in paraphrases[:n]:
            first = engine.answer(r["collection"], r["original"], policy=policy)
            full.append(first.latency_ms)
            exact.append(engine.answer(r["collection"], r["original"], policy=policy).latency_ms)
            near = engine.answer(r["collection"], r["paraphrase"], policy=policy)
            if _cache_stage(near)["lookup"] == "near_hit":
                rewrite.append(near.latency_ms)
            else:
                declined += 1
    finally:
        engine.retriever.store.close()
    out = {"n": n, "full_answer": percentiles(full), "exact_hit": percentiles(exact),
           "served_rewrite": percentiles(rewrite) if rewrite else None, "not_served": declined}
    if rewrite:
        out["rewrite_over_full_p50"] = round(percentiles(rewrite)["p50_ms"] / percentiles(full)["p50_ms"], 3)
    return out


def run(args) -> dict[str, Any]:
    from adaptive_rag.settings import Settings

    data = Path(args.traffic)
    from eval.cache_data import read_jsonl

    paraphrases = read_jsonl(data / "paraphrases.jsonl")
    negatives = read_jsonl(data / "hard_negatives.jsonl")[: args.negatives or None]
    update = {"data_dir": args.data_dir.resolve(), "qdrant_url": None, "decisions_url": None}
    if args.target_error is not None:
        update["cache_target_error"] = args.target_error
    if args.rewrite is not None:
        update["cache_rewrite"] = args.rewrite
    if args.same_question is not None:
        update["cache_same_question"] = args.same_question
    settings = Settings().model_copy(update=update)
    result: dict[str, Any] = {"machine": machine_info(), "policy": args.policy, "data": str(data),
                              "target_error": settings.cache_target_error, "start_similarity": settings.cache_similarity,
                              "rewrite": settings.cache_rewrite, "same_question": settings.cache_same_question,
                              "same_question_min": settings.cache_same_question_min,
                              "command": "python -m eval.bench " + " ".join(args.argv), "date": time.strftime("%Y-%m-%d")}
    with tempfile.TemporaryDirectory(prefix="arag-bench-traffic-") as tmp:
        if args.latency:
            result["latency"] = latency(settings, paraphrases, args.latency, args.policy, Path(tmp) / "lat")
            log(f"latency: {result['latency']}")
        for part in ("look_alikes", "stream"):
            work = Path(tmp) / part
            work.mkdir()
            engine, cache = _engine(settings, work, generation_cache=True)
            try:
                if part == "look_alikes":
                    result[part] = look_alikes(engine, paraphrases, negatives, args.policy, args.seed)
                else:
                    pool = [{"collection": r["collection"], "question": r["question"], "answers": r["answers"]}
                            for r in negatives if r["collection"] == "squad-dev"]
                    result[part] = stream_run(engine, build_stream(paraphrases, pool, args.stream, args.seed), args.policy)
            finally:
                cache.flush()
                engine.retriever.store.close()
            log(f"{part} done")
    if args.rows_out:
        args.rows_out.write_text("".join(json.dumps({"part": p, **r}) + "\n"
                                         for p in ("look_alikes", "stream") for r in result[p]["rows"]))
    for p in ("look_alikes", "stream"):
        result[p].pop("rows")
    return result


def format_result(r: dict[str, Any]) -> str:
    cpu = r["machine"]["cpu"]
    la, st = r["look_alikes"], r["stream"]
    neg, para = la["hard_negatives"], la["paraphrases"]
    lines = [f"machine: {cpu.get('model')}, {cpu.get('physical_cores')} cores, flags {' '.join(cpu.get('flags', []))}",
             f"policy {r['policy']}; thresholds start at {r['start_similarity']}, target error {r['target_error']}, "
             f"rewrite {r.get('rewrite', 'adapt')}", "",
             f"hard negatives: {neg['wrong_hits']} wrong hits of {neg['n']} = {neg['wrong_hit_rate']:.3%} "
             f"(95% upper {neg['wrong_hit_rate_95_upper']:.3%}); served from cache {neg['served_from_cache']}; "
             f"outcomes {neg['outcomes']}",
             f"paraphrases: {para['served_from_cache']} of {para['n']} served ({para['served_share']:.1%}); "
             f"outcomes {para['outcomes']}"]
    if "served_f1" in para:
        f = para["served_f1"]
        lines.append(f"  F1 of served paraphrases {f['cached']:.3f} vs full answers {f['full']:.3f}: "
                     f"{f['diff']:+.3f} [{f['diff_ci'][0]:+.3f}, {f['diff_ci'][1]:+.3f}]")
    if "similarity_auroc_paraphrase_vs_negative" in la:
        lines.append(f"  similarity AUROC, paraphrase vs hard negative: {la['similarity_auroc_paraphrase_vs_negative']:.3f}")
    c, f = st["cost_per_query"], st["f1"]
    lines += [f"stream of {st['n']} ({st['kinds']}): cost per query {c['on']:.3g} vs {c['off']:.3g} off, "
              f"reduction {c['reduction']:.1%} [{c['reduction_ci'][0]:.1%}, {c['reduction_ci'][1]:.1%}]; "
              f"F1 {f['on']:.3f} vs {f['off']:.3f}: {f['diff']:+.3f} [{f['diff_ci'][0]:+.3f}, {f['diff_ci'][1]:+.3f}]",
              f"  outcomes by kind: {st['outcomes']}"]
    lat = r.get("latency")
    if lat:
        lines.append(f"latency ({lat['n']} originals, no generation cache): full answer p50 "
                     f"{lat['full_answer']['p50_ms']:.0f} ms, exact hit p50 {lat['exact_hit']['p50_ms']:.1f} ms, "
                     f"served rewrite p50 {lat['served_rewrite']['p50_ms'] if lat['served_rewrite'] else float('nan'):.0f} ms "
                     f"({lat.get('rewrite_over_full_p50', '-')}x of a full answer; {lat['not_served']} not served)")
    return "\n".join(lines)
