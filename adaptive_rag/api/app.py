"""The FastAPI application, assembled by `create_app` from parts that each state their contract:

- adaptive_rag/api/lifespan.py: the engine (store, embedder, models, decision log) built once at
  start and kept on `app.state` (tests pass a ready engine instead), readiness, metrics, retention,
  and the shutdown that cancels the requests still running;
- adaptive_rag/api/errors.py: one table from exceptions to (HTTP status, OpenAI error type,
  headers), installed as the app's exception handlers and used by the streaming error event too;
- adaptive_rag/api/routes/: the REST routes, included from one list (`ROUTES`), /metrics among them;
- adaptive_rag/ui/: the inspector's pages at /ui and its sign-in redirect (ui/signin.py);
- middleware: the request body limit (413) and the access log (outermost, so it sees every status);
- /docs: Swagger UI served from the swagger-ui-bundle package, no CDN.

Errors use OpenAI's shape, {"error": {"message", "type", "code"}}, so OpenAI SDKs show them: a bad
request is a 4xx (400 bad values, 404 unknown collection or decision, 422 malformed JSON or wrong
types); a model backend failure is a 502 (503 when it is worth retrying) whose body names the
failure and the decision id that recorded it. Never a 500 for input a client sent.
"""

from __future__ import annotations

from fastapi import FastAPI

from adaptive_rag import __version__
from adaptive_rag.query.engine import QueryEngine
from adaptive_rag.settings import Settings

SWAGGER_ASSETS = "/static/swagger"


def _offline_docs(app: FastAPI) -> None:
    """/docs with Swagger UI's files served by the app (the swagger-ui-bundle package), not a CDN,
    so it works on a machine without internet."""
    import swagger_ui_bundle
    from fastapi.openapi.docs import get_swagger_ui_html
    from fastapi.staticfiles import StaticFiles

    app.mount(SWAGGER_ASSETS, StaticFiles(directory=swagger_ui_bundle.swagger_ui_path), name="swagger-assets")

    @app.get("/docs", include_in_schema=False)
    async def docs():
        return get_swagger_ui_html(openapi_url=app.openapi_url, title=f"{app.title} - API docs",
                                   swagger_js_url=f"{SWAGGER_ASSETS}/swagger-ui-bundle.js",
                                   swagger_css_url=f"{SWAGGER_ASSETS}/swagger-ui.css",
                                   swagger_favicon_url=f"{SWAGGER_ASSETS}/favicon-32x32.png")


def create_app(settings: Settings | None = None, engine: QueryEngine | None = None, preload: bool | None = None) -> FastAPI:
    """`preload`: load the panel's models in a background thread after the server starts
    listening (default: when the app builds its own engine; tests pass a ready engine)."""
    from adaptive_rag.api.access_log import AccessLog
    from adaptive_rag.api.auth import KeyRing
    from adaptive_rag.api.body_limit import BodyLimit
    from adaptive_rag.api.errors import install_error_handlers
    from adaptive_rag.api.lifespan import lifespan_for
    from adaptive_rag.api.routes import include_routes
    from adaptive_rag.ui.routes import router as inspector
    from adaptive_rag.ui.signin import install_sign_in

    s = settings or Settings()
    keys = KeyRing.from_settings(s)  # a broken keys file fails here, before the server starts
    app = FastAPI(title="adaptive-rag", version=__version__, lifespan=lifespan_for(s, engine, preload),
                  docs_url=None, redoc_url=None,
                  description="Answers questions over document collections and shows, per query, why it routed as it did.")
    _offline_docs(app)
    app.state.settings, app.state.keys = s, keys
    app.add_middleware(BodyLimit, max_bytes=s.max_body_bytes,
                       larger=[("POST", r"/v1/collections/[^/]+/documents", s.max_ingest_bytes)])
    app.add_middleware(AccessLog)  # added last, so outermost: it sees 413s and every status
    install_error_handlers(app)
    install_sign_in(app)  # an inspector page without a valid key: to the sign-in page, no data
    include_routes(app)
    app.include_router(inspector)
    return app
