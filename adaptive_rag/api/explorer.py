"""Learning in the background of a server that serves a learned router: for ARAG_EXPLORE_SHARE of
its served decisions, another action answers the same question once the server is idle and the
judge grades it (adaptive_rag/query/explore.py), so the router learns about actions it did not
choose; for ARAG_JUDGE_SHARE of them, the judge grades the served answer itself.

Users first:
- A decision waits in a short queue (EXPLORE_QUEUE, the newest kept) until no user request is
  admitted (waiting or generating).
- A user request admitted after that check, before the exploration's first model call, cancels
  the exploration (it is dropped, not retried).
- One admitted mid-exploration cancels it too: the explored answer stops at its next token (the
  engine's cancellation), and a judge call in progress finishes first, so the user waits at most
  for the current model call. How long the explorer took to stop is observed in
  `arag_exploration_preempt_seconds` (its p95 is the figure to watch).
- A served answer waiting to be judged is dropped when a user request is admitted; a judge call
  is one model call, which a user may wait for.
- The last day's learning spend (judging and exploring) stays within ARAG_LEARNING_BUDGET_PER_DAY.

`/metrics`: `arag_explorations_total{outcome}` (explored, cancelled, over_budget, nothing: no other
action or no verdict, error), `arag_judge_calls_total{of}` (served, explored),
`arag_learning_spend_dollars_total` (explored answers and judge calls),
`arag_exploration_preempt_seconds`. Each outcome may make the router learn (ARAG_ROUTER_LEARN_EVERY).
"""

from __future__ import annotations

import random
import threading
import time
from collections import deque

from adaptive_rag.errors import RequestCancelled

EXPLORE_QUEUE = 32
IDLE_POLL_S = 0.02


class BackgroundExplorer:
    def __init__(self, engine, admission, settings, metrics=None, seed: int | None = None):
        self.engine, self.admission, self.settings, self.metrics = engine, admission, settings, metrics
        self.rng = random.Random(seed)
        self._pending: deque = deque(maxlen=EXPLORE_QUEUE)
        self._wake = threading.Condition()
        self._stopping = False
        self._cancel: threading.Event | None = None
        self._preempted_at: float | None = None
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._loop, name="arag-explorer", daemon=True)

    def start(self) -> "BackgroundExplorer":
        self.admission.arrival_listeners.append(self._user_arrived)
        self.engine.observers.append(self.observe)
        self._thread.start()
        return self

    def stop(self, wait_s: float = 10.0) -> None:
        with self._wake:
            self._stopping = True
            self._wake.notify_all()
        self._user_arrived()  # an exploration in progress stops at its next token
        self._thread.join(wait_s)
        if self.observe in self.engine.observers:
            self.engine.observers.remove(self.observe)
        if self._user_arrived in self.admission.arrival_listeners:
            self.admission.arrival_listeners.remove(self._user_arrived)

    def observe(self, decision) -> None:
        """An engine observer: queue this share of the learned router's served decisions."""
        from adaptive_rag.query.explore import EXPLORER

        if decision.status != "ok" or decision.owner == EXPLORER or decision.route is None:
            return
        if not any(s.name == "learned_router" for s in decision.stages):
            return
        for kind, share in (("judge", self.settings.judge_share), ("explore", self.settings.explore_share)):
            if self.rng.random() < share:
                with self._wake:
                    self._pending.append((kind, decision.id))
                    self._wake.notify()

    def _user_arrived(self) -> None:
        with self._lock:
            if self._cancel is not None and not self._cancel.is_set():
                self._cancel.set()
                self._preempted_at = time.monotonic()

    def _count(self, outcome: str) -> None:
        if self.metrics is not None:
            self.metrics.explorations.labels(outcome).inc()

    def _next(self) -> tuple[str, str] | None:
        with self._wake:
            while not self._pending and not self._stopping:
                self._wake.wait(1.0)
            return None if self._stopping else self._pending.pop()

    def _loop(self) -> None:
        while True:
            item = self._next()
            if item is None:
                return
            kind, decision_id = item
            while self.admission.admitted > 0 and not self._stopping:  # users first
                time.sleep(IDLE_POLL_S)
            if self._stopping:
                return
            try:
                (self._judge_one if kind == "judge" else self._explore_one)(decision_id)
            except Exception as exc:  # a failed exploration must never stop the explorer
                self._count("error")
                import logging

                logging.getLogger("arag.explorer").warning("%s of %s failed: %s", kind, decision_id, exc)

    def _judge_one(self, decision_id: str) -> None:
        """Judge a served answer (query/judge.py), unless a user arrived or the budget is spent."""
        from adaptive_rag.api.teaching import learn_if_due
        from adaptive_rag.query.explore import DAY_S
        from adaptive_rag.query.judge import judge_and_record, panel_roles
        from gatekeeper.router_learning import action_of

        log = self.engine.decision_store
        record = log.get(decision_id)
        action = action_of(record, panel_roles(self.engine)) if record else None
        if action in (None, "abstain") or self.admission.admitted > 0:
            return
        if log.learning_spend(time.time() - DAY_S) >= self.settings.learning_budget_per_day:
            self._count("over_budget")
            return
        judged = judge_and_record(self.engine, record, action, self.settings.judge_model)
        if judged is None or judged[1] is None:
            return
        cost = judged[1]["cost"]
        if self.metrics is not None:
            self.metrics.judge_calls.labels("served").inc()
            self.metrics.learning_spend.inc(cost)
            self.metrics.outcomes.labels("judge").inc()
        learn_if_due(self.engine, self.settings.router_learn_every)

    def _explore_one(self, decision_id: str) -> None:
        from adaptive_rag.api.teaching import learn_if_due
        from adaptive_rag.query.explore import DAY_S, explore
        from gatekeeper.learned_router import LearnedRouter

        log, router = self.engine.decision_store, self.engine.routers.get("panel")
        record = log.get(decision_id) if log is not None else None
        if record is None or not isinstance(router, LearnedRouter):
            return
        if log.learning_spend(time.time() - DAY_S) >= self.settings.learning_budget_per_day:
            self._count("over_budget")
            return
        cancel = threading.Event()
        with self._lock:
            self._cancel, self._preempted_at = cancel, None
        if self.admission.admitted > 0:  # a user came between the idle check and now
            cancel.set()
        try:
            row = explore(self.engine, router, record, self.rng, cancel=cancel, judge_model=self.settings.judge_model)
        except RequestCancelled:
            self._count("cancelled")
            return
        finally:
            with self._lock:
                self._cancel = None
                preempted = self._preempted_at
            if preempted is not None and self.metrics is not None:
                self.metrics.exploration_preempt.observe(time.monotonic() - preempted)
        if row is None:
            self._count("nothing")
            return
        self._count("explored")
        if self.metrics is not None:
            self.metrics.judge_calls.labels("explored").inc()
            self.metrics.learning_spend.inc(row["cost"])
            self.metrics.outcomes.labels("explore").inc()
        learn_if_due(self.engine, self.settings.router_learn_every)
