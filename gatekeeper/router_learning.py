"""How a learned router (gatekeeper/learned_router.py) learns: outcomes in, a new version out.

- `action_of(record, roles)`: the panel action a decision's final answer came from ("rag:strong",
  "abstain", ...), given the panel's role -> model names; None for an answer that is no router
  action (long context) or a decision without an answer.
- `feedback_outcome(...)`: the outcome row a user's verdict on a decision adds (label and weight
  by the rule in gatekeeper/online.py), or None when the decision was not routed by a panel
  router (nothing to learn: its stage holds the inputs a version learns from).
- `learn(decisions, router)`: the outcomes after the router's latest version, each turned into
  (collection, action, z, label, weight) from its decision's router stage (`panel_router` or `learned_router`) (the base router's
  probabilities and retrieval inputs, recorded when it was decided), update the posteriors and
  publish the next version. `rebuild=True` starts again from the base router over every outcome.
- `start(decisions, name, base, data_dir, embedder)`: version 1 of a new learned router on the
  panel router `base` (before any version, `learned:NAME` serves `panel:default` unchanged).
- `rollback(decisions, name, version)`: publish a copy of an older version as the newest. The
  outcomes the rolled-back versions learned are not learned again (only `rebuild` does).

Publishing is optimistic: a version names its parent, and when another process published first,
`learn` learns again from that one (Conflict at most `RETRIES` times).
"""

from __future__ import annotations

from collections import Counter
from typing import Any, Mapping

from adaptive_rag.errors import Conflict, NotFoundError
from gatekeeper.learned_router import (LearnedRouter, LearnedState, adjustment_names, base_scaler, load_base,
                                       retrieval_features)
from gatekeeper.online import adjustment_vector, update_all

SHOWN_INPUTS = ("dense_scores", "bm25_scores", "agreement", "top1_agree", "hybrid_docs", "hybrid_hits", "profile")
ANSWER_ROUTES = ("closed_book", "rag")  # the routes of the panel actions (long context is none)
PAGE = 5000
RETRIES = 3


PANEL_STAGES = ("panel_router", "learned_router")  # the stages of routers that score ACTIONS from these inputs


def panel_stage(record: Mapping) -> Mapping | None:
    """The decision's panel or learned router stage with its inputs, or None."""
    for stage in record.get("stages") or []:
        signals = stage.get("signals") or {}
        if stage.get("name") in PANEL_STAGES and "probabilities" in signals and "dense_scores" in signals:
            return stage
    return None


def action_of(record: Mapping, roles: Mapping[str, str | None]) -> str | None:
    """The panel action of the decision's final answer (see the module docstring)."""
    route = record.get("route")
    if record.get("status") != "ok" or route is None:
        return None
    if route == "abstain":
        return "abstain"
    if route not in ANSWER_ROUTES:
        return None
    model = next((s.get("model") for s in reversed(record.get("stages") or []) if s.get("name") == route), None)
    role = next((r for r in ("reader", "strong") if model and roles.get(r) == model), None)
    return f"{route}:{role}" if role else None


def example(record: Mapping, action: str, router: LearnedRouter):
    """z of `action` for a recorded decision (None: no panel stage, or the action was not scored)."""
    stage = panel_stage(record)
    if stage is None:
        return None
    signals = stage["signals"]
    base_probs = signals.get("base_probabilities") or signals["probabilities"]
    if action not in base_probs:
        return None
    inputs = {**{k: signals.get(k) for k in SHOWN_INPUTS}, "query": record.get("query") or ""}
    mean, scale = base_scaler(router.base)
    return adjustment_vector(base_probs[action], retrieval_features(inputs, adjustment_names(router.base)), mean, scale)


def feedback_outcome(record: Mapping, correct: bool | None, rating: float | None, roles: Mapping[str, str | None],
                     weight: float) -> dict[str, Any] | None:
    """The outcome a user's verdict adds: {"action", "p_correct", "weight"}; None when there is
    nothing to learn (no panel stage, or no router action answered)."""
    action = action_of(record, roles)
    if action is None or panel_stage(record) is None:
        return None
    label = float(correct) if correct is not None else float(rating)
    return {"action": action, "p_correct": label, "weight": weight}


def learn(decisions, router: LearnedRouter, rebuild: bool = False, note: str = "") -> dict[str, Any]:
    """Learn the outcomes the router's latest version has not seen and publish the next version
    (none when there is nothing new). Returns a summary: version, parent, learned, skipped, by source."""
    for _ in range(RETRIES):
        router.refresh(force=True)
        try:
            return _learn_once(decisions, router, rebuild, note)
        except Conflict:
            continue
    raise Conflict(f"router {router.name!r}: other processes kept publishing versions; try again")


def _learn_once(decisions, router: LearnedRouter, rebuild: bool, note: str) -> dict[str, Any]:
    parent, current = router.version, router.state
    start = LearnedState.initial(current.base, router.base) if rebuild else current
    batch, sources, skipped, last, records = [], Counter(), 0, start.last_outcome_id, {}
    while True:
        page = decisions.outcomes(after_id=last, limit=PAGE)
        for outcome in page:
            last = outcome["id"]
            if outcome["decision_id"] not in records:
                records[outcome["decision_id"]] = decisions.get(outcome["decision_id"])
            record = records[outcome["decision_id"]]
            z = example(record, outcome["action"], router) if record else None
            if z is None:
                skipped += 1
                continue
            batch.append((record["collection"], outcome["action"], z, float(outcome["p_correct"]),
                          float(outcome["weight"])))
            sources[outcome["source"]] += 1
        if len(page) < PAGE:
            break
    summary = {"name": router.name, "parent": parent, "learned": len(batch), "skipped": skipped,
               "by_source": dict(sources), "rebuild": rebuild}
    if not batch and not rebuild and last == current.last_outcome_id:
        return {**summary, "version": parent, "published": False}
    learned_from = Counter() if rebuild else Counter(current.learned_from)
    learned_from.update(sources)
    collections = dict(start.collections)
    for collection in sorted({c for c, *_ in batch}):
        collections[collection] = update_all(start.posteriors(collection),
                                             [row for c, *row in batch if c == collection])
    state = LearnedState(start.base, start.base_training_hash, collections, last, dict(learned_from))
    text = note or (f"rebuilt from {len(batch)} outcomes" if rebuild else f"learned {len(batch)} outcomes")
    row = decisions.add_router_state(router.name, parent or None, state.to_json(), text)
    router.install(state, row["version"])
    return {**summary, "version": row["version"], "published": True}


def start(decisions, name: str, base: str, data_dir, embedder) -> dict[str, Any]:
    """Publish version 1 of learned router `name` on the panel router `base` ("panel:NAME"), no
    outcomes learned yet. Conflict when `name` already has versions."""
    from gatekeeper.knn_router import checked_name

    checked_name(name)
    panel = load_base(base, data_dir, embedder)
    if decisions.latest_router_version(name) is not None:
        raise Conflict(f"learned router {name!r} already exists; learn, roll back, or start another name")
    row = decisions.add_router_state(name, None, LearnedState.initial(base, panel).to_json(), f"started on {base}")
    return {"name": name, "version": row["version"], "base": base, "base_label": panel.label}


def rollback(decisions, router: LearnedRouter, version: int) -> dict[str, Any]:
    """Publish version `version`'s state as the newest version (see the module docstring)."""
    old = decisions.router_state(router.name, version)
    if old is None:
        raise NotFoundError(f"router {router.name!r} has no version {version}")
    router.refresh(force=True)
    target = LearnedState.from_json(old["state"], f"router {router.name} v{version}")
    target.last_outcome_id = max(target.last_outcome_id, router.state.last_outcome_id)
    row = decisions.add_router_state(router.name, router.version or None, target.to_json(),
                                     f"rollback to v{version}")
    router.install(target, row["version"])
    return {"name": router.name, "version": row["version"], "restored": version, "parent": row["parent"]}


def status(decisions, router: LearnedRouter, limit: int = 20) -> dict[str, Any]:
    """What `arag router status` and the admin endpoint show: the version served, the versions,
    the outcomes waiting to be learned, and per collection and action how far the posterior moved
    from the base."""
    router.refresh(force=True)
    state = router.state
    stats = decisions.outcome_stats(after_id=state.last_outcome_id)
    return {"name": router.name, "base": state.base, "base_label": router.base.label, "version": router.version,
            "versions": decisions.router_versions(router.name)[:limit],
            "outcomes": stats["by_source"], "waiting": stats["after"],
            "learned_from": state.learned_from,
            "collections": {c: {a: {"evidence": round(p.evidence, 3), "intercept": round(float(p.mean[0]), 4),
                                    "slope": round(float(p.mean[1]), 4)} for a, p in sorted(posts.items())}
                            for c, posts in sorted(state.collections.items())}}
