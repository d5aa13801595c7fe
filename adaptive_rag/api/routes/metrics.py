"""GET /metrics: the server's Prometheus metrics in the text format (adaptive_rag/api/metrics.py);
admin keys only, not in the OpenAPI schema."""

from __future__ import annotations

from fastapi import APIRouter, Request

from adaptive_rag.api.auth import AdminDep

router = APIRouter()


@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request, caller: AdminDep):
    """Prometheus text format (adaptive_rag/api/metrics.py); admin keys only."""
    from fastapi.responses import Response
    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

    return Response(generate_latest(request.app.state.metrics.registry), media_type=CONTENT_TYPE_LATEST)
