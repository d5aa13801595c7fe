"""The panel: the models a running engine can route to, by name, with their prices and tags, and
the roles that name each route's default model (`reader` for closed-book and RAG, `long_context`
for whole documents, `strong` for escalation to a stronger model).

A policy runs a route on a panel model by naming the model or its role (`QueryRun.rag("strong")`),
so routing across (route, model) pairs needs no new plumbing; every generation stage records the
model and engine it ran on, and its cost uses that model's prices.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

from adaptive_rag.errors import UserError
from adaptive_rag.models.lm import LanguageModel
from adaptive_rag.usage import Prices

ROLES = ("reader", "long_context", "strong")


@dataclass
class Models:
    reader: LanguageModel
    long_context: LanguageModel
    prices: Mapping[str, Prices]
    strong: LanguageModel | None = None
    others: tuple[LanguageModel, ...] = ()  # panel members without a role
    tags: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def all(self) -> dict[str, LanguageModel]:
        """Every panel model by name, role models first (one entry per name)."""
        out: dict[str, LanguageModel] = {}
        for lm in (self.reader, self.long_context, self.strong, *self.others):
            if lm is not None and lm.name not in out:
                out[lm.name] = lm
        return out

    def roles(self) -> dict[str, str]:
        return {role: getattr(self, role).name for role in ROLES if getattr(self, role) is not None}

    def get(self, model: str | None = None, default_role: str = "reader") -> LanguageModel:
        """The panel model named `model` (a role or a model name), else the default role's."""
        key = model or default_role
        if key in ROLES:
            lm = getattr(self, key)
            if lm is None:
                raise UserError(f"the panel has no {key} model (set ARAG_{key.upper()}_MODEL)")
            return lm
        panel = self.all()
        if key not in panel:
            raise UserError(f"model {key!r} is not in the panel; valid: {', '.join([*self.roles(), *panel])}")
        return panel[key]

    def with_tag(self, tag: str) -> list[LanguageModel]:
        return [lm for name, lm in self.all().items() if tag in self.tags.get(name, ())]

    def replace(self, wrap) -> None:
        """Swap every panel model for `wrap(model)`, keeping roles that share a model shared
        (eval wraps them in its generation cache)."""
        wrapped = {name: wrap(lm) for name, lm in self.all().items()}
        self.reader = wrapped[self.reader.name]
        self.long_context = wrapped[self.long_context.name]
        self.strong = wrapped[self.strong.name] if self.strong is not None else None
        self.others = tuple(wrapped[lm.name] for lm in self.others)
