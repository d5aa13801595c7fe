"""GET /metrics: Prometheus counters and histograms of what the server decided and spent.

One registry per app (not the global one), fed by the engine's decision observers, so every
decision counts, the failed ones included:
- arag_requests_total{policy, route, status, model} (model: the one whose answer was final)
- arag_tokens_total{model, direction} (input / output) and arag_cost_dollars_total{model}
- arag_stage_latency_seconds{stage} (queue wait, retrieval, each generation, the router steps)
  and arag_request_latency_seconds
- arag_router_probability{action}: every router's probability per action or label it scored (the panel
  router's P(correct) of each action, the gatekeeper's probability of each label: closed_book, rag,
  long_context, none)
- arag_probe_checks_total{outcome} (escalate / keep) and arag_probe_p_wrong: the answer probe's
  checks of reader answers (`verified_rag`, `adaptive`) and the P(wrong) it read
- arag_outcomes_total{source} (feedback:admin, feedback:key, judge): outcomes stored for the learned
  router; arag_feedback_capped_total: verdicts refused by a key's daily cap (ARAG_KEY_FEEDBACK_CAP);
  arag_router_version: the learned router version this replica serves (-1: none is served)
- arag_explorations_total{outcome} (explored, cancelled, over_budget, nothing, error),
  arag_judge_calls_total{of} (served, explored), arag_learning_spend_dollars_total (explored
  answers and judge calls) and
  arag_exploration_preempt_seconds (how long an exploration took to stop for a user request) of the
  background explorer (api/explorer.py); explored decisions count in tokens and cost, not in
  arag_requests_total
- arag_cache_lookups_total{outcome} (exact_hit, near_hit, near_declined: a rewrite that did not
  answer, stale: an entry found and evicted because what it cited changed, miss): the answer
  cache's lookups (query/cached.py)
- arag_admitted_requests (generating or queued) and arag_queued_requests (the queue depth), read
  at scrape time, and arag_admission_refused_total (429s: a full queue or a spent key budget)
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

LATENCY_BUCKETS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300)


class ServerMetrics:
    def __init__(self, admission=None, prices=None, routers=None):
        """`prices`: model name -> Prices (the panel's), to price each stage's tokens; `routers`: the
        engine's slot -> router (the learned router's version is read at scrape time)."""
        from gatekeeper.registry import ROUTERS

        self.prices = prices or {}
        self.router_stages = {cls.stage for cls in ROUTERS.values()}
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter("arag_requests", "Decisions by policy, route, status and the model that answered.",
                                ["policy", "route", "status", "model"], registry=r)
        self.tokens = Counter("arag_tokens", "Tokens by model and direction.", ["model", "direction"], registry=r)
        self.cost = Counter("arag_cost_dollars", "Price-weighted cost by model.", ["model"], registry=r)
        self.stage_latency = Histogram("arag_stage_latency_seconds", "Latency of each decision stage.", ["stage"],
                                       buckets=LATENCY_BUCKETS, registry=r)
        self.request_latency = Histogram("arag_request_latency_seconds", "Latency of a whole decision.",
                                         buckets=LATENCY_BUCKETS, registry=r)
        self.router_probability = Histogram("arag_router_probability",
                                            "The panel router's P(correct) per action; the gatekeeper's per label.",
                                            ["action"], buckets=tuple(i / 10 for i in range(1, 11)), registry=r)
        self.refused = Counter("arag_admission_refused", "Requests refused with 429.", registry=r)
        self.cache_lookups = Counter("arag_cache_lookups", "Answer cache lookups, by outcome.", ["outcome"], registry=r)
        self.probe_checks = Counter("arag_probe_checks", "Answer-probe checks of reader answers, by outcome.",
                                    ["outcome"], registry=r)
        self.probe_p_wrong = Histogram("arag_probe_p_wrong", "The answer probe's P(wrong) at each check.",
                                       buckets=tuple(i / 10 for i in range(1, 11)), registry=r)
        self.outcomes = Counter("arag_outcomes", "Outcomes stored for the learned router, by source.", ["source"],
                                registry=r)
        self.explorations = Counter("arag_explorations", "Background explorations, by outcome.", ["outcome"],
                                    registry=r)
        self.judge_calls = Counter("arag_judge_calls", "The background judge's calls, by what it graded.", ["of"],
                                   registry=r)
        self.learning_spend = Counter("arag_learning_spend_dollars", "What exploring (answers and judge calls) spent.",
                                      registry=r)
        self.exploration_preempt = Histogram("arag_exploration_preempt_seconds",
                                             "From a user request's arrival to the exploration it cancelled stopping.",
                                             buckets=LATENCY_BUCKETS, registry=r)
        self.feedback_capped = Counter("arag_feedback_capped", "Verdicts refused by a key's daily cap.", registry=r)
        from gatekeeper.learned_router import LearnedRouter

        panel = (routers or {}).get("panel")
        Gauge("arag_router_version", "The learned router version served (-1: none).",
              registry=r).set_function(lambda: panel.version if isinstance(panel, LearnedRouter) else -1)
        from collections import deque

        self.refusal_times: deque = deque(maxlen=100_000)  # for the inspector's refusals over time
        if admission is not None:
            Gauge("arag_admitted_requests", "Requests generating or waiting for a slot.",
                  registry=r).set_function(lambda: admission.admitted)
            Gauge("arag_queued_requests", "Requests waiting for a generation slot (the queue depth).",
                  registry=r).set_function(lambda: max(admission.admitted - admission.generating, 0))

    def refuse(self) -> None:
        """Count one 429 (a full queue or a spent budget), with its time."""
        import time

        self.refused.inc()
        self.refusal_times.append(time.time())

    def observe(self, decision) -> None:
        """Count one finished decision (any status); an explored one (api/explorer.py) only in
        tokens and cost."""
        if getattr(decision, "owner", None) == "explorer":
            self._spend(decision)
            return
        answering = [s.model for s in decision.stages if s.name == decision.route and s.model]
        self.requests.labels(decision.policy, decision.route or "none", decision.status,
                             answering[-1] if answering else "none").inc()
        self.request_latency.observe(decision.latency_ms / 1e3)
        self._spend(decision)
        for stage in decision.stages:
            self.stage_latency.labels(stage.name).observe(stage.latency_ms / 1e3)
            if stage.name in self.router_stages:  # the routers' probabilities per action/label
                for action, p in (stage.signals.get("probabilities") or {}).items():
                    self.router_probability.labels(action).observe(p)
            if stage.name == "cache":  # query/cached.py names the lookup's outcome
                self.cache_lookups.labels(stage.signals.get("lookup", "miss")).inc()
            if stage.name == "verify_probe":
                self.probe_checks.labels("escalate" if stage.outcome.startswith("escalate") else "keep").inc()
                if stage.signals.get("probe_p_wrong") is not None:
                    self.probe_p_wrong.observe(stage.signals["probe_p_wrong"])

    def _spend(self, decision) -> None:
        for stage in decision.stages:
            if stage.model and stage.usage.total_tokens:
                self.tokens.labels(stage.model, "input").inc(stage.usage.input_tokens)
                self.tokens.labels(stage.model, "output").inc(stage.usage.output_tokens)
                if stage.model in self.prices:
                    self.cost.labels(stage.model).inc(stage.usage.cost(self.prices[stage.model]))

