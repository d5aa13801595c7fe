"""Policies turn signals and thresholds into a route. Registry at the bottom.

A policy asks the engine to run routes (each call appends a Stage to the decision) and decides
from their signals; it never computes a signal itself, so evaluation can replay thresholds on
recorded signals without calling the models again.

Thresholds (settings `thresholds`, overridable per request):
- probe_min_mean_logprob: `probe` keeps the closed-book draft when its mean token log-prob is at
  least this;
- refusal_min_logprob: `self_route` and `probe` escalate a RAG answer to long context when the
  refusal word's first-token log-prob is at least this, even if the text answered (measured with
  Qwen2.5-Coder-0.5B on 30 SQuAD questions, each with its own and another article's paragraph:
  this log-prob separated wrong from right contexts with AUROC 0.95, while the text said
  "unanswerable" for only 53% of the wrong contexts).

Routing policies consult a router by slot (`router_slot`, gatekeeper/router.py) and read only its
verdict; which router fills the slot is a setting (ARAG_ROUTERS).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING

from adaptive_rag.errors import UserError
from adaptive_rag.registry import lookup

if TYPE_CHECKING:  # pragma: no cover
    from adaptive_rag.query.run import QueryRun

# refusal_min_logprob: with Qwen2.5-Coder-0.5B and the RAG prompt, 16 tuning-split SQuAD questions
# gave a mean refusal first-token log-prob of -5.9 with the gold paragraph and -3.0 with a
# paragraph of another article (the text refused only 4 of the 16 wrong contexts). -4.0 sits
# between; the calibration issue replaces these hand-set values with fitted ones.
DEFAULT_THRESHOLDS: dict[str, float] = {
    "probe_min_mean_logprob": -0.5, "refusal_min_logprob": -4.0,
    # adaptive / gatekeeper (probabilities from the calibrated gatekeeper artifact; `arag calibrate`
    # picks values for a target cost or accuracy from recorded outcomes):
    "adaptive_closed_book_min": 0.5,  # P(closed-book suffices) at which a closed-book draft is tried
    "adaptive_draft_min": 0.5,  # calibrated P(draft correct) at which the draft is kept
    "adaptive_long_context_min": 0.5,  # P(long context needed) at which RAG is skipped
    "adaptive_rag_min": 0.0,  # a RAG answer whose calibrated P(correct) is below this escalates
    # adaptive's own Self-Route refusal threshold, so that calibrating it never moves the baselines
    "adaptive_refusal_min_logprob": -4.0,
    # cascade: keep the weak model's RAG answer when its P(True) is at least this and its
    # support (share of the answer found in one chunk) at least cascade_support_min
    "cascade_p_true_min": 0.5, "cascade_support_min": 0.0,
    # knn_router: the weak model answers when the kNN router's P(weak suffices) is at least this
    "knn_weak_min": 0.5,
    # adaptive (the panel router): F1 probability given up to save one call of the priciest action
    "adaptive_cost_weight": 0.1,
    # verified_rag, and adaptive with an answer probe: the reader's RAG answer escalates
    # (settings: verify_escalation) when the probe's P(wrong) is at least this
    "probe_escalate_min": 0.5,
}
# Which recorded signal each threshold is compared with, and how: ">=" means the rule fires when the
# signal is at least the threshold (the inspector shows the comparison beside both values).
THRESHOLD_SIGNALS: dict[str, tuple[str, str]] = {
    "probe_min_mean_logprob": ("mean_logprob", ">="), "refusal_min_logprob": ("refusal_logprob", ">="),
    "adaptive_refusal_min_logprob": ("refusal_logprob", ">="), "adaptive_draft_min": ("p_draft_correct", ">="),
    "adaptive_rag_min": ("p_rag_correct", ">="), "cascade_p_true_min": ("p_true", ">="),
    "cascade_support_min": ("support", ">="), "knn_weak_min": ("p_weak_suffices", ">="),
    "probe_escalate_min": ("probe_p_wrong", ">="),
    # adaptive's escalation point, derived from its cost weight (escalation_threshold), not set
    "probe_escalate_at": ("probe_p_wrong", ">="),
}

ADAPTIVE_THRESHOLDS = ("adaptive_closed_book_min", "adaptive_draft_min", "adaptive_long_context_min",
                       "adaptive_rag_min", "adaptive_refusal_min_logprob")

ADAPTIVE_REFUSAL = "adaptive_refusal_min_logprob"


# Decision rules as pure functions of signals and thresholds: the policies below call them at
# query time and eval's replay calls them on recorded signals, so the two cannot drift apart.

def keeps_draft(mean_logprob: float | None, unanswerable: bool, thresholds) -> bool:
    """`probe`: keep the closed-book draft."""
    return mean_logprob is not None and not unanswerable and mean_logprob >= thresholds["probe_min_mean_logprob"]


def escalates(refusal_logprob: float | None, unanswerable: bool, thresholds, p_correct: float | None = None,
              refusal_key: str = "refusal_min_logprob") -> bool:
    """Self-Route escalation of a RAG answer: said unanswerable, or the refusal word was likely,
    or (adaptive, which passes its own `refusal_key`) the calibrated P(correct) is below
    `adaptive_rag_min`."""
    by_logprob = refusal_logprob is not None and refusal_logprob >= thresholds[refusal_key]
    by_calibrator = p_correct is not None and p_correct < thresholds.get("adaptive_rag_min", 0.0)
    return unanswerable or by_logprob or by_calibrator


def gate_plan(probs, thresholds) -> str:
    """First move from the gatekeeper's probabilities: "draft", "long_context" or "rag"."""
    if probs["closed_book"] >= thresholds["adaptive_closed_book_min"]:
        return "draft"
    return after_draft(probs, thresholds)


def after_draft(probs, thresholds) -> str:
    return "long_context" if probs["long_context"] >= thresholds["adaptive_long_context_min"] else "rag"


def probe_escalates(p_wrong: float | None, unanswerable: bool, thresholds) -> bool:
    """`verified_rag` (and `adaptive` with an answer probe): escalate the reader's RAG answer when
    it said unanswerable, when the probe has no reading (an empty answer), or when the probe's
    P(wrong) is at least `probe_escalate_min`."""
    return unanswerable or p_wrong is None or p_wrong >= thresholds["probe_escalate_min"]


VERIFIED_READER = "rag:reader+verify"


def conditional_strong(p_strong: float, given: dict | None = None) -> tuple[float, float]:
    """(P(the strong model is right | the reader is wrong), the same | the reader is right) for a
    question whose P(strong right) is `p_strong`: scaled by the ratios the panel router measured on
    its training labels (`given`, its meta "strong_given_reader": the strong model is right less
    often where the reader fails). Without them, `p_strong` for both, which flatters escalation."""
    if not given or not given.get("overall"):
        return p_strong, p_strong
    return (min(1.0, p_strong * given["reader_wrong"] / given["overall"]),
            min(1.0, p_strong * given["reader_right"] / given["overall"]))


def verified_reader(probs, costs, rates: tuple[float, float], strong: tuple[float, float] | None = None) -> tuple[float, float]:
    """P(correct) and expected cost of `adaptive`'s verified action: RAG on the reader, checked by
    its answer probe, escalated to RAG on the strong model when the probe doubts it. `rates` =
    (P(escalate | the reader is right), P(escalate | it is wrong)) at the escalation point
    (AnswerProbe.escalation_rates); `strong` = conditional_strong(...) (default: the router's
    P(strong right) for both)."""
    p_reader = probs["rag:reader"]
    if_wrong, if_right = strong or (probs["rag:strong"], probs["rag:strong"])
    esc_right, esc_wrong = rates
    p_correct = p_reader * ((1 - esc_right) + esc_right * if_right) + (1 - p_reader) * esc_wrong * if_wrong
    escalated = p_reader * esc_right + (1 - p_reader) * esc_wrong
    return p_correct, costs["rag:reader"] + escalated * costs["rag:strong"]


def with_verified_reader(probs, costs, utility, cost_weight: float, rates,
                         strong: tuple[float, float] | None = None) -> tuple[str | None, dict]:
    """The panel router's choice once the verified action competes: (VERIFIED_READER or None,
    its P(correct), cost and utility, on the panel router's utility scale)."""
    p, cost = verified_reader(probs, costs, rates, strong)
    top = max(costs.values()) or 1.0
    value = p - cost_weight * cost / top
    best = max(utility.values())
    return (VERIFIED_READER if value > best + 1e-12 else None), {"p_correct": p, "cost": cost, "utility": value}


def keeps_adaptive_draft(p_draft: float, unanswerable: bool, thresholds) -> bool:
    return not unanswerable and p_draft >= thresholds["adaptive_draft_min"]


class Policy(ABC):
    name: str
    uses: tuple[str, ...] = ()  # thresholds it reads
    router_slot: str | None = None  # the router slot it consults (gatekeeper/router.py), if any

    @abstractmethod
    def run(self, q: "QueryRun") -> None:
        """Run routes through `q` until one answer is final; `q.finish(result)` sets it, or
        `q.answer_with(route, model)` when the route is chosen before its answer is generated
        (a streaming client then sees the answer as it is decoded)."""


def _escalate(q: "QueryRun", result) -> bool:
    return escalates(result.signals.get("refusal_logprob"), result.unanswerable, q.thresholds)


class ClosedBook(Policy):
    name = "closed_book"

    def run(self, q):
        q.answer_with("closed_book")


class AlwaysRag(Policy):
    name = "always_rag"

    def run(self, q):
        q.answer_with("rag")


class AlwaysLongContext(Policy):
    name = "always_lc"

    def run(self, q):
        q.answer_with("long_context")


class SelfRoute(Policy):
    """RAG; escalate to long context when the reader declares the context insufficient."""

    name = "self_route"
    uses = ("refusal_min_logprob",)

    def run(self, q):
        result = q.rag()
        escalate = _escalate(q, result)
        q.note("self_route", {"refusal_logprob": result.signals.get("refusal_logprob"),
                              "said_unanswerable": result.unanswerable},
               {"refusal_min_logprob": q.threshold("refusal_min_logprob")},
               "escalate to long context" if escalate else "keep RAG answer")
        if escalate:
            result = q.long_context()
        q.finish(result)


class Probe(Policy):
    """Closed-book draft first; keep it when confident, else Self-Route."""

    name = "probe"
    uses = ("probe_min_mean_logprob", "refusal_min_logprob")

    def run(self, q):
        draft = q.closed_book()
        confidence = draft.signals.get("mean_logprob")
        keep = keeps_draft(confidence, draft.unanswerable, q.thresholds)
        q.note("probe", {"mean_logprob": confidence, "said_unanswerable": draft.unanswerable},
               {"probe_min_mean_logprob": q.threshold("probe_min_mean_logprob")},
               "keep closed-book answer" if keep else "retrieve")
        if keep:
            q.finish(draft)
            return
        SelfRoute().run(q)


class GatekeeperOnly(Policy):
    """The classifier alone: its first move is final (no draft check, no escalation). An ablation
    that shows what the log-prob probes add in `adaptive`."""

    name = "gatekeeper"
    uses = ("adaptive_closed_book_min", "adaptive_long_context_min")
    router_slot = "gatekeeper"

    def run(self, q):
        plan = gate_plan(q.consult(self.router_slot).probabilities, q.thresholds)
        q.answer_with({"draft": "closed_book", "long_context": "long_context", "rag": "rag"}[plan])


class GatekeeperAdaptive(Policy):
    """The single-model router (before the panel router): gatekeeper first, log-prob probes second:
    - P(closed-book suffices) high: draft closed-book, keep it if its calibrated P(correct) agrees;
    - P(long context needed) high: straight to long context (no wasted RAG call);
    - otherwise RAG with Self-Route, also escalating answers whose calibrated P(correct) is low
      (confidently wrong RAG answers that never say "unanswerable")."""

    name = "gatekeeper_adaptive"
    uses = ADAPTIVE_THRESHOLDS
    router_slot = "gatekeeper"

    def run(self, q):
        probs = q.consult(self.router_slot).probabilities
        plan = gate_plan(probs, q.thresholds)
        if plan == "draft":
            draft = q.closed_book()
            p_draft = q.p_correct(self.router_slot, "draft", draft)
            keep = keeps_adaptive_draft(p_draft, draft.unanswerable, q.thresholds)
            q.note("adaptive_draft", {"p_draft_correct": p_draft, "said_unanswerable": draft.unanswerable},
                   {"adaptive_draft_min": q.threshold("adaptive_draft_min")},
                   "keep closed-book answer" if keep else "draft rejected")
            if keep:
                q.finish(draft)
                return
            plan = after_draft(probs, q.thresholds)
        if plan == "long_context":
            q.finish(q.long_context())
            return
        result = q.rag()
        p_rag = q.p_correct(self.router_slot, "rag", result)
        escalate = escalates(result.signals.get("refusal_logprob"), result.unanswerable, q.thresholds, p_rag,
                             ADAPTIVE_REFUSAL)
        q.note("adaptive_escalation", {"p_rag_correct": p_rag, "refusal_logprob": result.signals.get("refusal_logprob"),
                                       "said_unanswerable": result.unanswerable},
               {k: q.threshold(k) for k in ("adaptive_rag_min", ADAPTIVE_REFUSAL)},
               "escalate to long context" if escalate else "keep RAG answer")
        q.finish(q.long_context() if escalate else result)


def verify_and_escalate(q: "QueryRun", result, threshold: tuple[str, float] | None = None) -> None:
    """Finish with the reader's RAG `result`, or escalate it (settings: verify_escalation) when
    the answer probe doubts it (probe_escalates at `threshold`, (name, value); default the
    request's `probe_escalate_min`); the check is a `verify_probe` stage."""
    p_wrong = q.probe_p_wrong(result)
    name, value = threshold or ("probe_escalate_min", q.threshold("probe_escalate_min"))
    route, role = q.engine.config.verify_escalation
    escalate = probe_escalates(p_wrong, result.unanswerable, {"probe_escalate_min": value})
    q.note("verify_probe", {"probe_p_wrong": p_wrong, "said_unanswerable": result.unanswerable,
                            "probe_ms": result.generation.extra.get("probe_ms")},
           {name: value}, f"escalate to {route} on {role}" if escalate else "keep the reader's answer")
    q.finish(q.route(route, role) if escalate else result)


def escalation_threshold(strong: tuple[float, float], cost_strong: float, top_cost: float, cost_weight: float) -> float:
    """`adaptive`'s probe threshold, from its one cost weight. `strong` = (P(strong right | the
    reader is wrong), P(strong right | it is right)) (conditional_strong). Escalating a reader answer
    that is wrong with probability p gains p x P(strong right | wrong) and loses (1 - p) x (1 -
    P(strong right | right)), for cost_weight x cost_strong / top_cost of utility (the panel
    router's scale). So escalate when
        p >= (cost_weight x cost_strong / top_cost + 1 - P(strong right | right))
             / (P(strong right | wrong) + 1 - P(strong right | right)),
    kept within [0, 1.01] (1.01 never escalates)."""
    if_wrong, if_right = strong
    denominator = if_wrong + 1.0 - if_right
    if denominator <= 0:
        return 1.01
    point = (cost_weight * cost_strong / (top_cost or 1.0) + 1.0 - if_right) / denominator
    return min(max(point, 0.0), 1.01)


class VerifiedRag(Policy):
    """AutoMix-style verify and escalate, with an internal-state probe as the verifier: the reader
    answers with RAG, its answer probe (read from the same generation, no extra model call) gives
    P(wrong), and a doubted answer escalates to `verify_escalation` (strong RAG by default)."""

    name = "verified_rag"
    uses = ("probe_escalate_min",)

    def run(self, q):
        route, role = q.engine.config.verify_escalation
        if not q.has_model(role):  # refuse before answering, not only when an answer escalates
            raise UserError(f"policy verified_rag escalates to {route} on the panel's {role} model, and the panel has "
                            f"none (set ARAG_{role.upper()}_MODEL or ARAG_VERIFY_ESCALATION)")
        verify_and_escalate(q, q.rag("reader"))


class Adaptive(Policy):
    """The panel router (gatekeeper/panel_router.py) picks (route, model) before anything is
    generated: abstain, closed-book or RAG, on the reader or the strong model, whichever has the
    best P(correct) less `adaptive_cost_weight` times its relative price. Chosen on the `mixed`
    dev split among the learned routers by the rule declared in docs/evaluation.md.

    Two stages where the reader serves an answer probe (ARAG_ANSWER_PROBES), the panel has a strong
    model and doubted answers escalate to its RAG (the default ARAG_VERIFY_ESCALATION), all tuned
    by the one cost weight (a `verify_plan` stage records the plan):
    - the probe's escalation point follows from the weight and the strong model's P(correct) where
      the reader is wrong and right (escalation_threshold, conditional_strong);
    - before generating, a sixth action competes, `rag:reader+verify` (verified_reader), with the
      probe's escalation rates at that point;
    - after generating, a RAG answer of the reader is checked by the probe at that point and may
      escalate as in `verified_rag` (its text then reaches a streaming client after the check)."""

    name = "adaptive"
    uses = ("adaptive_cost_weight",)
    router_slot = "panel"

    def run(self, q):
        from gatekeeper.panel_router import ACTIONS

        verdict = q.consult(self.router_slot)
        route, role, _ = ACTIONS[verdict.choice]
        plan = _verification_plan(q, verdict, q.router(self.router_slot))
        if plan is not None and plan["pick"]:
            route, role = "rag", "reader"
        if route == "abstain":
            q.abstain("the panel router found no route likely to answer")
        elif plan is not None and route == "rag" and q.engine.models.get(role).name == q.engine.models.reader.name:
            verify_and_escalate(q, q.rag(role), ("probe_escalate_at", plan["at"]))
        else:
            q.answer_with(route, role)


def _verification_plan(q: "QueryRun", verdict, router) -> dict | None:
    """`adaptive`'s probe stages for this request, recorded as a `verify_plan` stage: the
    escalation point and whether the verified reader wins; None where they do not apply."""
    probe = q.engine.models.reader.answer_probe
    signals = verdict.shown()
    if probe is None or q.engine.config.verify_escalation != ("rag", "strong") or not q.has_model("strong") \
            or not {"utility", "costs"} <= set(signals) or "rag:strong" not in verdict.probabilities:
        return None
    weight, costs, probs = q.threshold("adaptive_cost_weight"), signals["costs"], verdict.probabilities
    given = (getattr(router, "meta", None) or {}).get("strong_given_reader")
    strong = conditional_strong(probs["rag:strong"], given)
    at = escalation_threshold(strong, costs["rag:strong"], max(costs.values()), weight)
    shown = {"probe_escalate_at": at, "router_choice": verdict.choice, "strong_if_reader_wrong": strong[0],
             "strong_if_reader_right": strong[1], "strong_given_reader": given}
    pick = None
    table = probe.meta.get("escalation_rates")
    if table:
        rates = probe.escalation_rates(at)
        pick, value = with_verified_reader(probs, costs, signals["utility"], weight, rates, strong)
        shown.update(value, escalate_if_right=rates[0], escalate_if_wrong=rates[1],
                     escalation_rates=[[row["threshold"], round(row["if_right"], 4), round(row["if_wrong"], 4)]
                                       for row in table])
    q.note("verify_plan", shown, {"adaptive_cost_weight": weight},
           "rag on the reader, verified" if pick or verdict.choice == "rag:reader" else f"keep {verdict.choice}")
    return {"pick": pick, "at": at}


class AdaptiveV1(Policy):
    """`adaptive` as it was before answer probes: the panel router's choice is final (no verified
    action, no check after generating), whether or not the reader serves a probe. The baseline that
    shows what the probe's two stages add, on the same questions."""

    name = "adaptive_v1"
    uses = ("adaptive_cost_weight",)
    router_slot = "panel"

    def run(self, q):
        from gatekeeper.panel_router import ACTIONS

        route, role, _ = ACTIONS[q.consult(self.router_slot).choice]
        if route == "abstain":
            q.abstain("the panel router found no route likely to answer")
        else:
            q.answer_with(route, role)


def keeps_weak(p_true: float | None, support: float | None, unanswerable: bool, thresholds) -> bool:
    """`cascade`: keep the weak model's answer (a missing signal never keeps it)."""
    if unanswerable or p_true is None:
        return False
    return p_true >= thresholds["cascade_p_true_min"] and (support is None or support >= thresholds["cascade_support_min"])


class AlwaysStrongLongContext(Policy):
    """Long context on the panel's strong model: whole documents of the hits within
    `strong_long_context_budget` tokens (Self-Route's escalation target with a stronger reader)."""

    name = "always_strong_lc"

    def run(self, q):
        q.answer_with("long_context", "strong")


class AlwaysWeakRag(Policy):
    """RAG on the panel's reader (the weak end of weak/strong routing)."""

    name = "always_weak_rag"

    def run(self, q):
        q.answer_with("rag", "reader")


class AlwaysStrongRag(Policy):
    """RAG on the panel's strong model (ARAG_STRONG_MODEL)."""

    name = "always_strong_rag"

    def run(self, q):
        q.answer_with("rag", "strong")


class AlwaysMultiStep(Policy):
    """The `multi_step` route on the reader (query/multi_step.py)."""

    name = "always_multi_step"

    def run(self, q):
        q.answer_with("multi_step", "reader")


class StrongMultiStep(Policy):
    """The `multi_step` route on the panel's strong model."""

    name = "strong_multi_step"

    def run(self, q):
        q.answer_with("multi_step", "strong")


class StrongClosedBook(Policy):
    """Closed-book on the panel's strong model: general-knowledge questions the collection does
    not cover, answered from the larger model's own knowledge."""

    name = "strong_closed_book"

    def run(self, q):
        q.answer_with("closed_book", "strong")


class AlwaysAbstain(Policy):
    """Says the collection does not answer, without calling a model: the zero-cost corner of the
    frontier, correct only on questions nothing answers."""

    name = "always_abstain"

    def run(self, q):
        q.abstain("the always_abstain policy answers nothing")


class Cascade(Policy):
    """FrugalGPT / AutoMix style: the weak model answers with RAG; a verifier (its own P(True),
    and how much of the answer the chunks hold) keeps that answer or asks the strong model. When
    the strong model also finds no answer in the chunks, the collection does not answer the
    question: abstain, with no citations."""

    name = "cascade"
    uses = ("cascade_p_true_min", "cascade_support_min")

    def run(self, q):
        weak = q.rag("reader")
        p_true = None if weak.unanswerable else q.p_true(weak)
        support = weak.support
        keep = keeps_weak(p_true, support, weak.unanswerable, q.thresholds)
        q.note("cascade", {"p_true": p_true, "support": support, "said_unanswerable": weak.unanswerable},
               {k: q.threshold(k) for k in self.uses}, "keep weak answer" if keep else "escalate to strong model")
        if keep:
            q.finish(weak)
            return
        strong = q.rag("strong")
        if strong.unanswerable:
            q.abstain("the strong model found no answer in the chunks either")
            return
        q.finish(strong)


class KnnRouterPolicy(Policy):
    """RouteLLM-style pre-generation routing: before any answer is generated, the kNN router
    (gatekeeper/knn_router.py) says how likely the weak model suffices for questions like this
    one; RAG runs on the weak model when that is at least `knn_weak_min`, else on the strong."""

    name = "knn_router"
    uses = ("knn_weak_min",)
    router_slot = "weak_strong"

    def run(self, q):
        p = q.consult(self.router_slot).probabilities["weak_suffices"]
        weak = p >= q.threshold("knn_weak_min")
        q.note("knn_route", {"p_weak_suffices": p}, {"knn_weak_min": q.threshold("knn_weak_min")},
               "weak model" if weak else "strong model")
        q.answer_with("rag", "reader" if weak else "strong")


POLICIES: dict[str, type[Policy]] = {p.name: p for p in (ClosedBook, AlwaysRag, AlwaysLongContext, SelfRoute, Probe,
                                                          GatekeeperOnly, GatekeeperAdaptive, Adaptive, AdaptiveV1, VerifiedRag,
                                                          AlwaysWeakRag, AlwaysStrongRag,
                                                          AlwaysStrongLongContext, AlwaysMultiStep, StrongMultiStep,
                                                          StrongClosedBook, AlwaysAbstain, Cascade,
                                                          KnnRouterPolicy)}


def get_policy(name: str) -> Policy:
    return lookup(POLICIES, name, "policy")()
