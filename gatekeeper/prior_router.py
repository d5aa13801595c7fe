"""The prior router: the panel router without features, as a baseline for the `panel` slot.

It gives every question the same P(correct) per action: the share of the panel router's training
questions that action answered correctly (F1 >= 0.5), and chooses with the same rule
(panel_router.choose: P(correct) - adaptive_cost_weight * cost / max cost, over the actions the
serving panel can run). So it always takes the one action that is best on average at that cost
weight; whatever the panel router gains over it is what its features (the question's form,
retrieval signals, the query embedding) buy.

Loaded as `prior:NAME` from the panel router NAME's file (its training positive rates and mean
costs), so it needs no training of its own and no embedder: ARAG_ROUTERS='{"panel": "prior"}'.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

from adaptive_rag.errors import ConfigError
from gatekeeper.panel_router import choice_verdict, load_named
from gatekeeper.router import Router, RouterRun, RouterVerdict


@dataclass
class PriorRouter(Router):
    kind = "prior"
    stage = "prior_router"
    rates: Mapping[str, float]  # action -> P(correct) on the training questions
    costs: Mapping[str, float]  # action -> mean cost per query in training ($)
    name: str
    questions: int

    @classmethod
    def load(cls, name: str, data_dir: Path, embedder) -> "PriorRouter":
        panel = load_named(data_dir, name)
        metrics = panel.meta.get("cross_validated") or {}
        missing = sorted(set(panel.actions) - set(metrics))
        if missing:
            raise ConfigError(f"the panel router {name!r} records no training rate for {', '.join(missing)}")
        return cls({a: float(metrics[a]["positive_rate"]) for a in panel.actions},
                   {a: m.cost for a, m in panel.actions.items()}, name, int(panel.meta.get("questions", 0)))

    @property
    def label(self) -> str:
        return f"prior router {self.name} ({self.questions} questions)"

    def verdict(self, run: RouterRun) -> RouterVerdict:
        return choice_verdict(dict(self.rates), self.costs, run, {})
