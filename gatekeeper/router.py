"""The one interface every router implements, and the verdict it returns.

A router looks at one request in flight (a `RouterRun`: the question, its retrieval, a closed-book
draft when it wants one, the thresholds, which panel roles exist) and returns a `RouterVerdict`:
a probability per action or label, its choice, the inputs it read and what the decision record
shows. The query core records the verdict as a stage named `Router.stage` and hands it to the
policy; policies read only the verdict (and `p_answer_correct`), never a router's own API.

Routers are loaded by kind and name through the registry in gatekeeper/registry.py:
`ROUTERS = {kind: class}`; a class's `load(name, data_dir, embedder)` finds its trained files
(raising NotFoundError when none are trained under that name, ConfigError when they cannot serve
this embedder). Adding a router is one module with a `Router` subclass plus one registry line.

Slots. Each routing policy asks one slot (ROUTER_SLOTS), and the settings say which router fills
it (`ARAG_ROUTERS`, default from ARAG_GATEKEEPER / ARAG_WEAK_STRONG_ROUTER / ARAG_PANEL_ROUTER):
- `panel` (`adaptive`): P(correct) per action of gatekeeper/panel_router.py's ACTIONS, and the
  action to take (the choice); the `panel` kind, or `learned` (gatekeeper/learned_router.py: a
  panel router corrected on the collection's own traffic, its versions in the decision log);
- `gatekeeper` (`gatekeeper`, `gatekeeper_adaptive`): P(label) for closed_book, rag,
  long_context, none, and calibrated P(correct) of a draft or a RAG answer (`p_answer_correct`);
- `weak_strong` (`knn_router`): P(weak_suffices), the chance the reader is enough.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Protocol

from adaptive_rag.errors import UserError

ROUTER_SLOTS = ("panel", "gatekeeper", "weak_strong")


class RouterRun(Protocol):
    """What a router may read of the request in flight (adaptive_rag/query/run.py's QueryRun)."""

    @property
    def query(self) -> str: ...

    @property
    def collection(self) -> str:
        """The collection the request asks."""

    def retrieval(self, k: int | None = None) -> Any:
        """The request's hybrid retrieval (adaptive_rag.retrieve.Retrieval), searched once."""

    def closed_book(self, model: str | None = None) -> Any:
        """The closed-book draft on the reader, generated once per request (its cost is recorded)."""

    def threshold(self, name: str) -> float: ...

    def has_model(self, role: str) -> bool:
        """Whether the serving panel has a model in `role` ("reader", "strong", ...)."""


@dataclass(frozen=True)
class RouterVerdict:
    """One router's answer for one request.

    `probabilities`: per action or label. `choice`: the action it recommends, or its most likely
    label (None: it only scores); the stage's outcome. `inputs`: the router inputs it read, as the record shows them
    (not the query vector). `signals`: everything the decision record's stage shows (by default
    the probabilities and the inputs). `thresholds`: the thresholds the choice used."""

    probabilities: Mapping[str, float]
    choice: str | None
    inputs: Mapping[str, Any] = field(default_factory=dict)
    signals: Mapping[str, Any] | None = None
    thresholds: Mapping[str, float] = field(default_factory=dict)

    def shown(self) -> dict[str, Any]:
        if self.signals is not None:
            return dict(self.signals)
        return {"probabilities": dict(self.probabilities), **self.inputs}


class Router(ABC):
    """A router of one kind. Subclasses set `kind` (its registry name) and `stage` (the name of
    the decision stage that records its verdicts) and implement `load`, `label` and `verdict`."""

    kind: str
    stage: str
    uses_decision_log = False

    @classmethod
    @abstractmethod
    def load(cls, name: str, data_dir: Path, embedder) -> "Router":
        """The router trained under `name` for this data directory, checked against the serving
        `embedder` (name, dim). NotFoundError: none is trained under that name. ConfigError: it
        exists but cannot serve (another embedder, an unreadable file). A kind whose state lives in
        the decision log sets `uses_decision_log = True` and takes it as `decisions=`."""

    @property
    @abstractmethod
    def label(self) -> str:
        """What the decision record names as the stage's model: the router and its training set."""

    @abstractmethod
    def verdict(self, run: RouterRun) -> RouterVerdict:
        """Look at the request and decide; the caller records the verdict and times it."""

    def p_answer_correct(self, which: str, signals: Mapping[str, Any], unanswerable: bool) -> float:
        """Calibrated P(an answer is correct) from its log-prob signals; `which` is "draft"
        (closed-book) or "rag". Routers without answer calibrators refuse."""
        raise UserError(f"the {self.kind} router does not calibrate answers; "
                        "a policy that verifies answers needs the gatekeeper router")


def displayed(inputs: Mapping) -> dict:
    """Router inputs as a decision stage shows them (the query, its vector and the draft are
    recorded elsewhere)."""
    return {k: v for k, v in inputs.items() if k not in ("query", "query_vector", "probe")}
