"""The FastAPI application. The engine (store, embedder, models, decision log) is built once in
the lifespan and kept on `app.state`; tests pass a ready engine instead.

Errors use OpenAI's shape, {"error": {"message", "type", "code"}}, so OpenAI SDKs show them: a bad
request is a 4xx (400 bad values, 404 unknown collection
or decision, 422 malformed JSON or wrong types); a model backend failure is a 502 (503 when it is
worth retrying) whose body names the failure and the decision id that recorded it. Never a 500
for input a client sent.
"""

from __future__ import annotations

from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from adaptive_rag import __version__
from adaptive_rag.api.admission import Admission, Busy
from adaptive_rag.api.readiness import NotReady, Readiness
from adaptive_rag.api.answering import InFlight
from adaptive_rag.api.auth import AdminDep, Forbidden, KeyRing, Unauthorized
from adaptive_rag.errors import DeadlineExceeded, NotFoundError, RequestCancelled, Unavailable, UserError
from adaptive_rag.models.lm import BackendError
from adaptive_rag.query.engine import QueryEngine
from adaptive_rag.settings import Settings


def error_response(status: int, kind: str, message: str, decision_id: str | None = None,
                   headers: dict[str, str] | None = None) -> JSONResponse:
    body: dict = {"error": {"message": message, "type": kind, "code": status}}
    headers = dict(headers or {})
    if decision_id:
        body["decision_id"] = decision_id
        headers["X-Decision-Id"] = decision_id
    return JSONResponse(body, status_code=status, headers=headers)


SWAGGER_ASSETS = "/static/swagger"
SHUTDOWN_CANCEL_WAIT_S = 10.0  # cancelled requests stop within a token or a model call


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
    s = settings or Settings()
    keys = KeyRing.from_settings(s)  # a broken keys file fails here, before the server starts

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        app.state.inflight = InFlight()
        app.state.admission = Admission(s.max_concurrent_requests, s.max_queued_requests, s.queue_wait_s)
        app.state.request_timeout_s = s.request_timeout_s
        if engine is not None:
            app.state.engine = engine
        else:
            from adaptive_rag.query.builder import build_engine

            app.state.engine = build_engine(s)
        app.state.readiness = Readiness()
        if preload if preload is not None else engine is None:
            # local weights load (and llama.cpp servers start) lazily; a server does it up front,
            # after it starts listening, so /healthz answers "loading" meanwhile
            app.state.readiness.load_in_background(app.state.engine.models.all().values())
        else:
            app.state.readiness.mark_ready()
        from adaptive_rag.api.metrics import ServerMetrics

        app.state.metrics = ServerMetrics(app.state.admission, app.state.engine.models.prices)
        app.state.engine.observers.append(app.state.metrics.observe)
        retention = None
        if s.decisions_retention_days and app.state.engine.decision_store is not None:  # prune now, then hourly
            from adaptive_rag.decision_store.retention import start_retention

            retention = start_retention(app.state.engine.decision_store, s.decisions_retention_days)
        yield
        if retention is not None:
            retention.stop()
        # shutting down: requests still running (uvicorn's grace period is over) stop at their next
        # token or model call and are recorded as cancelled
        app.state.inflight.draining = True
        app.state.inflight.cancel_all()
        await app.state.inflight.drained(SHUTDOWN_CANCEL_WAIT_S)  # their records are written
        app.state.engine.observers.remove(app.state.metrics.observe)

    app = FastAPI(title="adaptive-rag", version=__version__, lifespan=lifespan, docs_url=None, redoc_url=None,
                  description="Answers questions over document collections and shows, per query, why it routed as it did.")
    _offline_docs(app)
    app.state.settings, app.state.keys = s, keys
    from adaptive_rag.api.body_limit import BodyLimit

    app.add_middleware(BodyLimit, max_bytes=s.max_body_bytes,
                       larger=[("POST", r"/v1/collections/[^/]+/documents", s.max_ingest_bytes)])
    from adaptive_rag.api.access_log import AccessLog

    app.add_middleware(AccessLog)  # added last, so outermost: it sees 413s and every status

    @app.exception_handler(Busy)
    async def busy(request: Request, exc: Busy):
        request.app.state.metrics.refuse()
        return error_response(429, "rate_limit_error", str(exc), headers={"Retry-After": str(exc.retry_after_s)})

    from adaptive_rag.ui.routes import SignIn

    @app.exception_handler(SignIn)
    async def sign_in(request: Request, _: SignIn):  # an inspector page without a valid key: no data
        from urllib.parse import quote

        from fastapi.responses import RedirectResponse

        return RedirectResponse(f"/ui/login?next={quote(request.url.path)}", status_code=303)

    @app.exception_handler(Unauthorized)
    async def unauthorized(_: Request, exc: Unauthorized):
        return error_response(401, "authentication_error", str(exc), headers={"WWW-Authenticate": "Bearer"})

    @app.exception_handler(Forbidden)
    async def forbidden(_: Request, exc: Forbidden):
        return error_response(403, "permission_error", str(exc))

    @app.exception_handler(RequestCancelled)
    async def cancelled(_: Request, exc: RequestCancelled):  # the client is usually gone; 499 as nginx logs it
        return error_response(499, "cancelled_error", str(exc), getattr(exc, "decision_id", None))

    @app.exception_handler(NotReady)
    async def not_ready(_: Request, exc: NotReady):
        return error_response(503, "unavailable_error", str(exc), headers={"Retry-After": str(exc.retry_after_s)})

    @app.exception_handler(DeadlineExceeded)
    async def timed_out(_: Request, exc: DeadlineExceeded):
        return error_response(504, "timeout_error", str(exc), getattr(exc, "decision_id", None))

    @app.exception_handler(Unavailable)
    async def unavailable(_: Request, exc: Unavailable):  # a store held elsewhere, a decision log down
        return error_response(503, "unavailable_error", str(exc), getattr(exc, "decision_id", None),
                              headers={"Retry-After": "5"})

    @app.exception_handler(NotFoundError)
    async def not_found(_: Request, exc: NotFoundError):
        return error_response(404, "not_found_error", str(exc))

    @app.exception_handler(UserError)
    async def bad_request(_: Request, exc: UserError):
        return error_response(400, "invalid_request_error", str(exc))

    @app.exception_handler(BackendError)
    async def backend_failed(_: Request, exc: BackendError):
        return error_response(503 if exc.retryable else 502, "backend_error", f"model backend failed: {exc}",
                              exc.decision_id)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException):  # 404 unknown path, 405 wrong method, ...
        kind = "not_found_error" if exc.status_code == 404 else "invalid_request_error"
        return error_response(exc.status_code, kind, str(exc.detail), headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError):
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'] if p != 'body') or 'body'}: {e['msg']}"
                             for e in exc.errors())
        return error_response(422, "invalid_request_error", f"invalid request: {problems}")

    from adaptive_rag.api.routes import collections, decisions, documents, openai_compat, query, router_admin

    for module in (query, decisions, collections, documents, openai_compat, router_admin):
        app.include_router(module.router)
    from adaptive_rag.ui.routes import router as inspector

    app.include_router(inspector)

    @app.get("/metrics", include_in_schema=False)
    async def metrics(request: Request, caller: AdminDep):
        """Prometheus text format (adaptive_rag/api/metrics.py); admin keys only."""
        from fastapi.responses import Response
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return Response(generate_latest(request.app.state.metrics.registry), media_type=CONTENT_TYPE_LATEST)
    return app
