"""Exceptions to HTTP errors, in one table used by every route and by the streaming error event.

`ERRORS` is an ordered sequence of `ErrorKind(exception class, status, OpenAI error type, ...)`,
most specific class first; an exception maps to the first row it is an instance of. A row may add
a `Retry-After` header (the exception's `retry_after_s`, else the row's), a `WWW-Authenticate`
challenge, a message prefix, the decision id the exception carries (`decision_id` in the body and
`X-Decision-Id`), and count the answer as a refusal in the server's metrics.

The body is OpenAI's error shape, so OpenAI SDKs show it:
`{"error": {"message", "type", "code"}}` (+ `"decision_id"`). `error_body(exc)` gives
(status, body, headers) for an exception; a REST route answers it as the response
(`install_error_handlers` registers one handler for every row), and a stream that has started
sends the same body as its last event (adaptive_rag/api/routes/openai_compat.py). An exception
in no row is a bug: REST lets it surface as a 500; a stream ends with a 500 "server_error" event.

FastAPI's own errors keep their handlers here too: an unknown path or wrong method (Starlette's
HTTPException: 404 "not_found_error", else "invalid_request_error") and a malformed body (422
"invalid_request_error" naming each field).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from adaptive_rag.api.admission import Busy
from adaptive_rag.api.auth import Forbidden, Unauthorized
from adaptive_rag.api.limits import BudgetSpent, FeedbackCapped
from adaptive_rag.api.readiness import NotReady
from adaptive_rag.errors import (ConfigError, Conflict, DeadlineExceeded, DecisionStoreUnavailable, NotFoundError,
                                 RequestCancelled, StoreBusy, UnknownNameError, Unavailable, UserError)
from adaptive_rag.models.lm import BackendError

if TYPE_CHECKING:  # pragma: no cover
    from fastapi import FastAPI
    from fastapi.responses import JSONResponse


@dataclass(frozen=True)
class ErrorKind:
    """How one exception class answers. `retryable_status`: the status instead when the exception
    says it is worth retrying (`exc.retryable`). `retry_after_s`: send Retry-After (the exception's
    own `retry_after_s` when it has one). `challenge`: the WWW-Authenticate header. `decision_id`:
    name the decision the exception carries (the engine sets it on failures it recorded).
    `refusal`: count the answer in the server's refused requests (metrics)."""

    exc: type[BaseException]
    status: int
    type: str
    retryable_status: int | None = None
    retry_after_s: int | None = None
    challenge: str | None = None
    decision_id: bool = False
    prefix: str = ""
    refusal: bool = False


_UNAVAILABLE = dict(status=503, type="unavailable_error", retry_after_s=5, decision_id=True)
_BAD_REQUEST = dict(status=400, type="invalid_request_error")

ERRORS: tuple[ErrorKind, ...] = (
    ErrorKind(BackendError, 502, "backend_error", retryable_status=503, decision_id=True,
              prefix="model backend failed: "),
    ErrorKind(FeedbackCapped, 429, "rate_limit_error", retry_after_s=3600),  # a key's verdicts for the day
    ErrorKind(BudgetSpent, 429, "rate_limit_error", retry_after_s=5, refusal=True),  # a key's budget
    ErrorKind(Busy, 429, "rate_limit_error", retry_after_s=5, refusal=True),  # the admission queue is full
    ErrorKind(NotReady, 503, "unavailable_error", retry_after_s=10),  # models loading, or shutting down
    ErrorKind(Unauthorized, 401, "authentication_error", challenge="Bearer"),
    ErrorKind(Forbidden, 403, "permission_error"),
    ErrorKind(RequestCancelled, 499, "cancelled_error", decision_id=True),  # the client is usually gone; as nginx logs it
    ErrorKind(DeadlineExceeded, 504, "timeout_error", decision_id=True),
    ErrorKind(DecisionStoreUnavailable, **_UNAVAILABLE),
    ErrorKind(StoreBusy, **_UNAVAILABLE),  # a collection held by another process
    ErrorKind(Unavailable, **_UNAVAILABLE),
    ErrorKind(NotFoundError, 404, "not_found_error"),
    ErrorKind(Conflict, 409, "conflict_error"),
    ErrorKind(UnknownNameError, **_BAD_REQUEST),
    ErrorKind(ConfigError, **_BAD_REQUEST),
    ErrorKind(UserError, **_BAD_REQUEST),
)

SERVER_ERROR = ErrorKind(Exception, 500, "server_error")  # a bug (streams only; REST lets it surface)


def kind_of(exc: BaseException) -> ErrorKind | None:
    """The first row `exc` is an instance of, or None (a bug)."""
    return next((row for row in ERRORS if isinstance(exc, row.exc)), None)


def payload(status: int, kind: str, message: str, decision_id: str | None = None) -> dict:
    body: dict = {"error": {"message": message, "type": kind, "code": status}}
    if decision_id:
        body["decision_id"] = decision_id
    return body


def error_body(exc: BaseException, decision_id: str | None = None) -> tuple[int, dict, dict[str, str]]:
    """(status, body in OpenAI's error shape, headers) for `exc`. `decision_id`: the request's
    decision, named when the exception carries none (a stream always has one)."""
    row = kind_of(exc) or SERVER_ERROR
    status = row.retryable_status if row.retryable_status and getattr(exc, "retryable", False) else row.status
    headers: dict[str, str] = {}
    if row.retry_after_s is not None:
        own = getattr(exc, "retry_after_s", None)
        headers["Retry-After"] = str(row.retry_after_s if own is None else own)
    if row.challenge:
        headers["WWW-Authenticate"] = row.challenge
    named = (getattr(exc, "decision_id", None) if row.decision_id else None) or decision_id
    if named:
        headers["X-Decision-Id"] = named
    return status, payload(status, row.type, row.prefix + (str(exc) or type(exc).__name__), named), headers


def error_response(status: int, kind: str, message: str, decision_id: str | None = None,
                   headers: dict[str, str] | None = None) -> JSONResponse:
    """An error response in OpenAI's shape; a decision id goes in the body and `X-Decision-Id`."""
    from fastapi.responses import JSONResponse

    headers = dict(headers or {})
    if decision_id:
        headers["X-Decision-Id"] = decision_id
    return JSONResponse(payload(status, kind, message, decision_id), status_code=status, headers=headers)


def exception_response(exc: BaseException) -> JSONResponse:
    """The REST answer for a project exception, from the table."""
    from fastapi.responses import JSONResponse

    status, body, headers = error_body(exc)
    return JSONResponse(body, status_code=status, headers=headers)


def install_error_handlers(app: FastAPI) -> None:
    """One handler per row of the table (each answers from the table), and FastAPI's path and
    validation errors in the same shape."""
    from fastapi import Request
    from fastapi.exceptions import RequestValidationError
    from starlette.exceptions import HTTPException as StarletteHTTPException

    async def from_table(request: Request, exc: Exception):
        row = kind_of(exc)
        metrics = getattr(request.app.state, "metrics", None)
        if row is not None and row.refusal and metrics is not None:
            metrics.refuse()
        return exception_response(exc)

    for row in ERRORS:
        app.add_exception_handler(row.exc, from_table)

    async def http_error(_: Request, exc: StarletteHTTPException):  # 404 unknown path, 405 wrong method, ...
        kind = "not_found_error" if exc.status_code == 404 else "invalid_request_error"
        return error_response(exc.status_code, kind, str(exc.detail), headers=exc.headers)

    async def invalid(_: Request, exc: RequestValidationError):
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'] if p != 'body') or 'body'}: {e['msg']}"
                             for e in exc.errors())
        return error_response(422, "invalid_request_error", f"invalid request: {problems}")

    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(RequestValidationError, invalid)
