"""Training rows from user feedback (POST /v1/feedback): the decision's query, re-retrieved from
the collection as it is now, labelled by what the verdict proves.

- a correct answer: its route suffices, so the label is that route (the cheapest correct route is
  that one or cheaper: feedback labels lean expensive, never wrong-cheap);
- a wrong long-context answer: no route is known to work, `none`;
- a wrong closed-book or RAG answer does not say which route would have been right: skipped.
"""

from __future__ import annotations

from adaptive_rag.errors import NotFoundError
from adaptive_rag.settings import Settings

RATING_CORRECT = 0.5


def label_from_feedback(decision: dict, verdict: dict) -> str | None:
    correct = verdict["correct"] if verdict["correct"] is not None else (verdict["rating"] or 0.0) >= RATING_CORRECT
    route = decision.get("route")
    if decision.get("status") != "ok" or route not in ("closed_book", "rag", "long_context"):
        return None
    if correct:
        return route
    return "none" if route == "long_context" else None


def feedback_rows(log, retriever, top_k: int) -> list[dict]:
    """Label rows from the feedback in `log`, router inputs recomputed with `retriever`."""
    from gatekeeper.features import router_inputs

    rows = []
    for decision, verdict in log.feedback():
        label = label_from_feedback(decision, verdict)
        if label is None:
            continue
        stages = {s["name"]: s for s in decision["stages"]}
        stage = stages[decision["route"]]
        correct = label != "none"
        outcome = {"correct": correct, "f1": float(correct), "tokens": decision["usage"]["total_tokens"],
                   "unanswerable": stage["outcome"] == "unanswerable", "signals": stage["signals"]}
        try:
            retrieval = retriever.search(decision["collection"], decision["query"], k=top_k, components=True)
        except NotFoundError:  # the collection is gone: nothing to learn about it
            continue
        probe = stages["closed_book"]["signals"] if "closed_book" in stages else None
        rows.append({"id": f"feedback:{decision['id']}", "question": decision["query"], "collection": decision["collection"],
                     "inputs": router_inputs(decision["query"], retrieval, probe), "outcomes": {decision["route"]: outcome},
                     "label": label, "source": "feedback"})
    return rows


def feedback_rows_from_settings(settings: Settings) -> list[dict]:
    from adaptive_rag.decision_store import decision_store_from_settings
    from adaptive_rag.models.embedder import load_embedder
    from adaptive_rag.retrieve import Retriever
    from adaptive_rag.store import open_store

    log = decision_store_from_settings(settings)
    if not log.feedback():
        return []
    store = open_store(settings)
    try:
        return feedback_rows(log, Retriever(settings, store, load_embedder(settings)), settings.top_k)
    finally:
        store.close()
