"""Exploration: answer a served question once more with another action, judge that answer, and keep
the verdict as an outcome of the served decision, so the learned router learns about actions it
did not choose (a router that only learns from its own choices never finds out that another
action would have done better).

- `exploration_action`: which other action to try, by Thompson sampling: one draw of each
  action's posterior P(correct) (the base router's P where nothing is learned yet), less the cost
  weight times its relative cost, as the router's own choice rule; the best draw that is not the
  served action wins. Abstention is never explored (a judge cannot grade "no answer"), nor an
  action whose model the panel lacks.
- `explore(engine, router, record)`: run it (a decision of its own, policy `always_weak_rag`,
  `strong_closed_book`, ..., owner EXPLORER), judge it (query/judge.py) and add an `explore`
  outcome of the served decision with the explored decision's id, the verdict and what both
  calls cost. None when there is nothing to explore.
- `explore_recent(engine, limit, budget)`: explore the newest routed decisions that have no
  exploration yet, while the learning spend of the last day stays within `budget`.

The server's background explorer and `arag router learn --explore N` call these.
"""

from __future__ import annotations

import random
import time
from typing import Mapping

from adaptive_rag.errors import UserError

EXPLORER = "explorer"  # the owner recorded on explored decisions
POLICY_OF = {"closed_book:reader": "closed_book", "closed_book:strong": "strong_closed_book",
             "rag:reader": "always_weak_rag", "rag:strong": "always_strong_rag"}
DAY_S = 86_400.0  # the learning budget's and the feedback cap's window


def exploration_action(router, record: Mapping, served: str, has_strong: bool,
                       rng: random.Random | None = None) -> str | None:
    """The action to explore for a recorded decision (see the module docstring)."""
    import numpy as np

    from gatekeeper.learned_router import adjustment_names, base_scaler, retrieval_features
    from gatekeeper.online import adjustment_vector, thompson_choice
    from gatekeeper.router_learning import SHOWN_INPUTS, panel_stage

    stage = panel_stage(record)
    if stage is None:
        return None
    signals = stage["signals"]
    base_probs = signals.get("base_probabilities") or signals["probabilities"]
    weight = float((stage.get("thresholds") or {}).get("adaptive_cost_weight", 0.1))
    retrieval = retrieval_features({**{k: signals.get(k) for k in SHOWN_INPUTS}, "query": record.get("query") or ""},
                                   adjustment_names(router.base))
    mean, scale = base_scaler(router.base)
    candidates = [a for a in POLICY_OF if a != served and a in base_probs and (has_strong or not a.endswith(":strong"))]
    z = {a: adjustment_vector(base_probs[a], retrieval, mean, scale) for a in candidates}
    np_rng = np.random.default_rng((rng or random.Random()).randrange(2**32))
    return thompson_choice(router.state.posteriors(record["collection"]), base_probs, z,
                           {a: m.cost for a, m in router.base.actions.items()}, weight, candidates, np_rng)


def explore(engine, router, record: Mapping, rng: random.Random | None = None, cancel=None,
            judge_model: str | None = None) -> dict | None:
    """Explore one recorded decision (see the module docstring); returns the outcome row. `cancel`
    (a threading.Event): once set, the explored answer stops at its next token and no judge call
    starts (RequestCancelled). `judge_model`: a panel model or role (default: the strong model)."""
    from adaptive_rag.query.judge import judge_cost, judge_decision, panel_roles, retrieval_depth
    from gatekeeper.router_learning import action_of

    served = action_of(record, panel_roles(engine))
    if served is None:
        return None
    action = exploration_action(router, record, served, engine.models.strong is not None, rng)
    if action is None:
        return None
    explored = engine.answer(record["collection"], record["query"], policy=POLICY_OF[action],
                             top_k=retrieval_depth(record),
                             owner=EXPLORER, cancel=cancel, use_cache=False)  # an explored answer is made, never served
    if cancel is not None and cancel.is_set():  # a user arrived: no judge call after this one
        from adaptive_rag.errors import RequestCancelled

        raise RequestCancelled("exploration yields to a user request")
    verdict = judge_decision(engine, explored.to_dict(), judge_model)
    if verdict is None or verdict.p_correct is None:
        return None
    cost = explored.cost + judge_cost(engine, verdict)
    return engine.decision_store.add_outcome(
        record["id"], "explore", action, verdict.p_correct, 1.0, cost=cost,
        detail={"explored_decision": explored.id, "judge_model": verdict.generation.model,
                "judge_tokens": verdict.generation.usage.total_tokens, "answer": explored.answer})


def explore_recent(engine, router, limit: int, budget: float, seed: int | None = None,
                   judge_model: str | None = None) -> dict:
    """Explore up to `limit` of the newest decisions a panel or learned router made that were not
    explored yet, while the learning spend of the last day (judging and exploring, all of it)
    stays below `budget` (the panel's prices). Returns counts and what it spent."""
    from gatekeeper.router_learning import panel_stage

    log = engine.decision_store
    if log is None:
        raise UserError("exploring needs the decision log")
    rng = random.Random(seed)
    done = {"explored": 0, "spent": 0.0, "stopped_by_budget": False}
    offset = 0
    while done["explored"] < limit:
        page = log.list(status="ok", limit=200, offset=offset)
        if not page:
            break
        offset += len(page)
        for record in page:
            if record.get("owner") == EXPLORER or panel_stage(record) is None or \
                    any(o["source"] == "explore" for o in log.outcomes(decision_id=record["id"])):
                continue
            if log.learning_spend(time.time() - DAY_S) >= budget:
                done["stopped_by_budget"] = True
                return done
            row = explore(engine, router, record, rng, judge_model=judge_model)
            if row is not None:
                done["explored"] += 1
                done["spent"] += row["cost"]
            if done["explored"] >= limit:
                break
    return done
