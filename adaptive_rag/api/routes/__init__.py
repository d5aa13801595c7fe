"""The REST API's route modules, each with a `router`; `ROUTES` lists them in the order the app
includes them (`include_routes`). The inspector's pages (/ui) are the ui package's."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from fastapi import FastAPI

ROUTES = ("query", "decisions", "collections", "documents", "openai_compat", "router_admin", "learning", "metrics")


def include_routes(app: FastAPI) -> None:
    """Include every module's router of ROUTES in `app`, in order."""
    from importlib import import_module

    for name in ROUTES:
        app.include_router(import_module(f"{__name__}.{name}").router)
