"""Name registries: every stage keeps a `{name: class or factory}` dict at the bottom of its
module (POLICIES, ENGINES, STORES, DECISION_STORES, FILE_READERS, CLASSIFIERS, ROUTERS), and asks
it through `lookup`, so an unknown name is the same error everywhere: UnknownNameError, listing
the registered names."""

from __future__ import annotations

from typing import Iterable, Mapping, TypeVar

from adaptive_rag.errors import UnknownNameError

T = TypeVar("T")


def lookup(registry: Mapping[str, T], name: str, kind: str, also_valid: Iterable[str] = ()) -> T:
    """`registry[name]`; UnknownNameError "unknown {kind} {name!r}; valid: ..." when it is not
    there (`also_valid`: names the caller accepts besides the registry's, listed first)."""
    if not isinstance(name, str) or name not in registry:
        raise UnknownNameError(f"unknown {kind} {name!r}; valid: {', '.join([*also_valid, *registry])}")
    return registry[name]
