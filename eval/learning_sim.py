"""The learning simulation behind `python -m eval.bench learning`: a deployment replayed question by
question on recorded outcomes, so every router variant sees the same stream and no model runs.

Inputs, per stream question: its router inputs and every action's outcome (F1, cost: `arag
gatekeeper panel-labels` rows of an `arag eval` run of the five fixed policies on a stream of
eval/learning_stream.py), and the judge's P(correct) of each answer with the judge's tokens
(`python -m eval.judge_agreement` on the same run's records).

Variants, side by side on the same stream:
- `static`: the starting router, never updated;
- `learning_judge`: the learned router (gatekeeper/learned_router.py) on the starting router,
  taught by the judge only;
- `learning_judge_gold10`: the same plus a user's gold verdict on 10% of served answers (weight
  ARAG_FEEDBACK_WEIGHT's default 3);
- `ceiling`: a panel router trained with gold labels on this collection's own questions, disjoint
  from the stream (the `ceiling` split);
- every fixed action (`abstain`, `closed_book:reader`, ..., `rag:strong`: always_weak_rag and
  always_strong_rag among them): the frontier.

Learning: after each served answer, with probability `judge_share` the judge grades it (an
outcome of the served action, label = its P(correct), weight 1); with probability `explore_share`
one other action is also run and judged, the one with the best utility under a Thompson draw of
each action's posterior (abstention is never explored: a judge cannot grade "no answer"). Both
spend from a budget: a learning step runs only while the learning spend stays within `budget`
times the serving spend so far. The router learns after every question (ARAG_ROUTER_LEARN_EVERY=1).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np

from gatekeeper.learned_router import LearnedState, adjusted, adjustment_names, base_scaler, retrieval_features
from gatekeeper.online import adjustment_vector, thompson_choice, update_all
from gatekeeper.panel_router import ACTIONS, CORE_ACTIONS, CORRECT_F1, PanelRouter, choose

FIXED = CORE_ACTIONS  # the actions the stream's labels hold
STREAM = "stream"  # the one collection a simulated stream asks
JUDGEABLE = tuple(a for a in CORE_ACTIONS if a != "abstain")


@dataclass
class StreamQuestion:
    id: str
    kind: str | None
    inputs: dict
    outcomes: dict[str, dict]  # action -> {"f1", "cost", "tokens"}
    judged: dict[str, tuple[float, float]] = field(default_factory=dict)  # action -> (P(correct), judge cost $)


@dataclass
class SimConfig:
    cost_weight: float = 0.1
    judge_share: float = 0.2
    explore_share: float = 0.1
    gold_share: float = 0.0
    gold_weight: float = 3.0
    budget: float = 0.10
    seed: int = 0


def questions_from(label_rows: Sequence[Mapping], judgements: Sequence[Mapping], judge_price_per_token: float,
                   order: Sequence[str] | None = None) -> list[StreamQuestion]:
    """Stream questions from panel label rows and judgement rows ({"id", "policy", "p_correct",
    "judge_tokens"}), in `order` (the stream's ids; default: the rows' order)."""
    action_of = {policy: action for action, (_, _, policy) in ACTIONS.items()}
    by_id = {r["id"]: StreamQuestion(r["id"], r.get("kind"), r["inputs"], r["outcomes"]) for r in label_rows}
    for j in judgements:
        action = action_of.get(j["policy"])
        if j["id"] in by_id and action and j.get("p_correct") is not None:
            by_id[j["id"]].judged[action] = (float(j["p_correct"]), j.get("judge_tokens", 0) * judge_price_per_token)
    ids = order if order is not None else [r["id"] for r in label_rows]
    return [by_id[i] for i in ids if i in by_id]


def step(q: StreamQuestion, action: str, learn_cost: float = 0.0) -> dict:
    """One replayed question: the action taken, its recorded F1 and cost, and what learning spent."""
    o = q.outcomes[action]
    return {"id": q.id, "kind": q.kind, "action": action, "f1": float(o["f1"]), "cost": float(o["cost"]),
            "learn_cost": learn_cost}


def run_fixed(questions: Sequence[StreamQuestion], action: str) -> list[dict]:
    return [step(q, action) for q in questions]


def run_static(router: PanelRouter, questions: Sequence[StreamQuestion], cost_weight: float) -> list[dict]:
    costs = {a: m.cost for a, m in router.actions.items()}
    return [step(q, choose(router.probabilities(q.inputs), costs, ACTIONS, cost_weight)[0]) for q in questions]


def run_learning(base: PanelRouter, questions: Sequence[StreamQuestion], cfg: SimConfig) -> list[dict]:
    """The learned router on `base`, taught as the module docstring says; one step per question."""
    rng, np_rng = random.Random(cfg.seed), np.random.default_rng(cfg.seed)
    state = LearnedState.initial("panel:start", base)
    costs = {a: m.cost for a, m in base.actions.items()}
    mean, scale = base_scaler(base)
    served_spend = learn_spend = 0.0
    steps = []
    for q in questions:
        base_probs = base.probabilities(q.inputs)
        retrieval = retrieval_features(q.inputs, adjustment_names(base))
        action = choose(adjusted(state, base, base_probs, retrieval, STREAM), costs, ACTIONS, cfg.cost_weight)[0]
        served_spend += float(q.outcomes[action]["cost"])
        z = {a: adjustment_vector(p, retrieval, mean, scale) for a, p in base_probs.items()}
        batch, spent = [], 0.0

        def affordable(extra: float) -> bool:
            return learn_spend + spent + extra <= cfg.budget * served_spend

        if action in q.judged and rng.random() < cfg.judge_share and affordable(q.judged[action][1]):
            batch.append((action, z[action], q.judged[action][0], 1.0))
            spent += q.judged[action][1]
        if rng.random() < cfg.gold_share:
            batch.append((action, z[action], float(q.outcomes[action]["f1"] >= CORRECT_F1), cfg.gold_weight))
        if rng.random() < cfg.explore_share:
            other = thompson_choice(state.posteriors(STREAM), base_probs, z, costs, cfg.cost_weight,
                                    [a for a in JUDGEABLE if a != action and a in q.judged], np_rng)
            if other is not None:
                price = float(q.outcomes[other]["cost"]) + q.judged[other][1]
                if affordable(price):
                    batch.append((other, z[other], q.judged[other][0], 1.0))
                    spent += price
        if batch:
            state.collections[STREAM] = update_all(state.posteriors(STREAM), batch)
        learn_spend += spent
        steps.append(step(q, action, spent))
    return steps


def windows(steps: Sequence[dict], size: int = 50) -> list[dict]:
    """Per window of `size` questions: F1, serving cost and learning spend per question."""
    out = []
    for start in range(0, len(steps), size):
        part = steps[start:start + size]
        out.append({"from": start, "to": start + len(part), "f1": float(np.mean([s["f1"] for s in part])),
                    "cost": float(np.mean([s["cost"] for s in part])),
                    "learn_cost": float(np.mean([s["learn_cost"] for s in part]))})
    return out


def margins(runs: Mapping[str, Sequence[dict]], last: int) -> dict[str, dict]:
    """Over the last `last` questions: each variant's F1 and cost per question, its F1 margin over
    the fixed actions' frontier at its cost with a paired-bootstrap interval, and the paired F1
    difference to `static` and to `ceiling`."""
    from eval.metrics import frontier_mix
    from eval.stats import paired_bootstrap

    tail = {name: list(steps)[-last:] for name, steps in runs.items()}
    f1 = {name: [s["f1"] for s in steps] for name, steps in tail.items()}
    cost = {name: float(np.mean([s["cost"] for s in steps])) for name, steps in tail.items()}
    learn = {name: float(np.mean([s["learn_cost"] for s in steps])) for name, steps in tail.items()}
    fixed = {a: (cost[a], float(np.mean(f1[a]))) for a in FIXED if a in tail}
    out = {}
    for name in tail:
        mix = frontier_mix(cost[name] + learn[name], fixed)
        frontier_f1 = [sum(w * f1[p][i] for p, w in mix.items()) for i in range(len(f1[name]))]
        boot = paired_bootstrap({"v": f1[name], "frontier": frontier_f1}, "frontier")["v"]
        row = {"f1": boot["mean"], "f1_ci": boot["ci"], "cost": cost[name], "learn_cost": learn[name],
               "margin": boot["diff"], "margin_ci": boot["diff_ci"], "frontier_mix": mix}
        for ref in ("static", "ceiling", "rag:reader", "rag:strong"):
            if ref in f1 and ref != name:
                d = paired_bootstrap({"v": f1[name], "r": f1[ref]}, "r")["v"]
                row[f"minus_{ref}"] = {"diff": d["diff"], "ci": d["diff_ci"]}
        out[name] = row
    a, d = out.get("static"), out.get("ceiling")
    for name, row in out.items():
        if a and d and d["margin"] != a["margin"]:
            row["gap_closed"] = (row["margin"] - a["margin"]) / (d["margin"] - a["margin"])
    return out
