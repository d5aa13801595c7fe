"""The routers' state: which router serves each slot, the answer probes served, the loaded
gatekeeper's metadata and metrics. Teaching them (feedback, the learned router's versions) is
routes/learning.py."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from adaptive_rag.api.auth import AdminDep
from adaptive_rag.api.deps import EngineDep
from adaptive_rag.errors import NotFoundError

router = APIRouter(tags=["router"])


@router.get("/v1/routers")
def routers(engine: EngineDep, caller: AdminDep) -> dict[str, Any]:
    """Every router slot: the kind and label of the router serving it, or why none can."""
    from gatekeeper.router import Router

    return {slot: {"kind": r.kind, "label": r.label, "stage": r.stage} if isinstance(r, Router) else {"unavailable": r}
            for slot, r in sorted(engine.routers.items())}


@router.get("/v1/probes")
def probes(engine: EngineDep, caller: AdminDep) -> dict[str, Any]:
    """The answer probes served (ARAG_ANSWER_PROBES): kind, layer, the signal each stage records,
    and the model file, engine and dtype each was trained on."""
    return {name: {"kind": p.kind, "layer": p.layer, "signal": p.signal, "model_sha256": p.model_sha256,
                   "engine": p.engine, "dtype": p.dtype, "fingerprint": p.fingerprint, "meta": p.meta}
            for name, p in sorted(engine.probes.items())}


@router.get("/v1/gatekeeper")
def gatekeeper(engine: EngineDep, caller: AdminDep) -> dict[str, Any]:
    from gatekeeper.artifact import Gatekeeper

    gk = engine.routers.get("gatekeeper")
    if not isinstance(gk, Gatekeeper):
        raise NotFoundError("no gatekeeper is loaded (train one: arag gatekeeper train; ARAG_GATEKEEPER names it)")
    meta = {k: v for k, v in gk.meta.items() if k != "feature_names"}
    return {**meta, "label": gk.label, "n_features": len(gk.meta["feature_names"]),
            "thresholds": {k: v for k, v in engine.thresholds.items() if k.startswith("adaptive_") or k.startswith("refusal")}}
