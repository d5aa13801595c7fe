"""The decision inspector at /ui: server-rendered pages (Jinja2 templates in ./templates, one CSS
file in ./static; no JavaScript, no CDN), readable in any browser, with the REST API's keys and
roles.

Pages: the decisions list (filters, search, paging), one decision (answer, citations, a timeline
of its stages with signals beside their thresholds, the router's probabilities, tokens and cost
per stage, feedback), an overview (route mix, cost and latency over time, escalations,
abstentions, refusals), and the evaluation reports of ARAG_EVAL_RESULTS_DIR.

Sign-in: with API keys configured, /ui/login takes a key and keeps it in an HttpOnly,
SameSite=Strict cookie scoped to /ui (an `Authorization: Bearer` header works too). An admin sees
every decision; a query key sees only its own; a request without a valid key is sent to the sign-in
page and sees no data. An open server (no keys) answers loopback clients only, as the API does.
Forms that change something (feedback) carry a token derived from the signed-in key, so another
site cannot post them.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response

from adaptive_rag.api.auth import Caller, Forbidden, Unauthorized
from adaptive_rag.errors import NotFoundError, UserError
from adaptive_rag.query.answer_routes import ANSWER_ROUTES
from adaptive_rag.ui import views
from adaptive_rag.ui.signin import SignIn

HERE = Path(__file__).resolve().parent
COOKIE = "arag_key"
PAGE_SIZES = (25, 50, 100, 250, 1000)
ROUTES = (*ANSWER_ROUTES, "abstain")
STATUSES = ("ok", "error", "timeout", "cancelled")
_FORM_SECRET = secrets.token_bytes(32)  # an open server's form token key (per process)

router = APIRouter(prefix="/ui", include_in_schema=False)


def _templates():
    from fastapi.templating import Jinja2Templates

    templates = Jinja2Templates(directory=str(HERE / "templates"))
    templates.env.globals.update(duration=views.duration, money=views.money, number=views.number, iso=views.iso)
    templates.env.filters.update(duration=views.duration, money=views.money)
    return templates


TEMPLATES = None


def render(request: Request, name: str, status: int = 200, **context) -> HTMLResponse:
    global TEMPLATES
    if TEMPLATES is None:
        TEMPLATES = _templates()
    return TEMPLATES.TemplateResponse(request, name, {"caller": getattr(request.state, "caller", None), **context},
                                      status_code=status)


def ui_caller(request: Request) -> Caller:
    """The caller from `Authorization: Bearer` or the sign-in cookie. Raises SignIn without a
    valid key, Forbidden for a non-loopback client of an open server."""
    keys = request.app.state.keys
    header = request.headers.get("authorization")
    cookie = request.cookies.get(COOKIE)
    if not keys.open and not header and cookie:
        header = f"Bearer {cookie}"
    try:
        caller = keys.authenticate(header, request.client.host if request.client else None)
    except Unauthorized:
        raise SignIn() from None
    request.state.caller = caller
    return caller


def form_token(request: Request, caller: Caller) -> str:
    """A token for forms that change something, bound to the signed-in key (or, on an open server,
    to this process): a page of another site cannot know it."""
    key = caller.key.digest if caller.key is not None else _FORM_SECRET
    return hmac.new(key, b"arag-ui-form", hashlib.sha256).hexdigest()


def _time_param(value: str | None, name: str) -> float | None:
    """An empty field is no filter; otherwise unix seconds or ISO 8601 (a datetime-local field's
    value has no offset: UTC, as the page says)."""
    from adaptive_rag.times import parse_time

    return parse_time(name, value) if value and value.strip() else None


def _log(request: Request):
    log = request.app.state.engine.decision_store
    if log is None:
        raise NotFoundError("this server keeps no decision log")
    return log


@router.get("", response_class=HTMLResponse)
async def home() -> RedirectResponse:
    return RedirectResponse("/ui/decisions", status_code=303)


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request, next: str = "/ui/decisions"):
    return render(request, "login.html", next=_safe_next(next), error=None)


@router.post("/login", response_class=HTMLResponse)
def login(request: Request, key: str = Form(..., max_length=512), next: str = Form("/ui/decisions")):
    keys = request.app.state.keys
    try:
        keys.authenticate(f"Bearer {key}", request.client.host if request.client else None)
    except Unauthorized:
        return render(request, "login.html", status=401, next=_safe_next(next), error="That key is not valid.")
    response = RedirectResponse(_safe_next(next), status_code=303)
    response.set_cookie(COOKIE, key, httponly=True, samesite="strict", path="/ui",
                        secure=request.url.scheme == "https")
    return response


@router.post("/logout")
def logout() -> RedirectResponse:
    response = RedirectResponse("/ui/login", status_code=303)
    response.delete_cookie(COOKIE, path="/ui")
    return response


def _safe_next(target: str) -> str:
    return target if target.startswith("/ui") and not target.startswith("//") else "/ui/decisions"


@router.get("/decisions", response_class=HTMLResponse)
def decisions_page(request: Request, collection: str | None = None, policy: str | None = None,
                   route: str | None = None, status: str | None = None, model: str | None = None,
                   q: str | None = None, since: str | None = None, until: str | None = None,
                   limit: int = 50, offset: int = 0):
    caller = ui_caller(request)
    log = _log(request)
    limit = limit if limit in PAGE_SIZES else 50
    offset = max(0, min(offset, 2**62))
    filters: dict[str, Any] = {
        "collection": collection or None, "policy": policy or None, "route": route or None,
        "status": status or None, "model": (model or "").strip() or None, "text": (q or "").strip() or None,
        "since": _time_param(since, "since"), "until": _time_param(until, "until")}
    if not caller.is_admin:
        filters["owner"] = caller.name
    started = time.perf_counter()
    records = log.list(**filters, limit=limit, offset=offset)
    total = log.count(**filters)
    rows = [views.row(r) for r in records]
    from adaptive_rag.query.policies import POLICIES

    query = {k: v for k, v in {"collection": collection, "policy": policy, "route": route, "status": status,
                               "model": model, "q": q, "since": since, "until": until, "limit": limit}.items() if v}
    return render(request, "decisions.html", rows=rows, total=total, limit=limit, offset=offset, query=query,
                  filters={"collection": collection or "", "policy": policy or "", "route": route or "",
                           "status": status or "", "model": model or "", "q": q or "", "since": since or "",
                           "until": until or ""},
                  collections=_collections(request), policies=list(POLICIES), routes=ROUTES, statuses=STATUSES,
                  page_sizes=PAGE_SIZES, query_ms=(time.perf_counter() - started) * 1e3)


def _collections(request: Request) -> list[str]:
    try:
        return request.app.state.engine.retriever.store.list_collections()
    except Exception:  # noqa: BLE001 - a store held elsewhere must not break the page
        return []


def _visible(request: Request, caller: Caller, decision_id: str) -> dict:
    record = _log(request).get(decision_id) if len(decision_id) <= 64 else None
    if record is None or not (caller.is_admin or record.get("owner") == caller.name):
        raise NotFoundError(f"no decision {decision_id!r}")
    return record


@router.get("/decisions/{decision_id}", response_class=HTMLResponse)
def decision_page(request: Request, decision_id: str, sent: int = 0):
    caller = ui_caller(request)
    record = _visible(request, caller, decision_id)
    prices = request.app.state.engine.models.prices
    feedback = _log(request).feedback_for(decision_id) if caller.is_admin else None
    outcomes = _log(request).outcomes(decision_id=decision_id) if caller.is_admin else []
    return render(request, "decision.html", d=record, stages=views.timeline(record, prices), chain=views.chain(record),
                  models=views.models_of(record), feedback=feedback, outcomes=outcomes, sent=bool(sent),
                  token=form_token(request, caller))


@router.post("/decisions/{decision_id}/feedback")
def send_feedback(request: Request, decision_id: str, token: str = Form(...), verdict: str = Form(...),
                  comment: str = Form("", max_length=2000)):
    caller = ui_caller(request)
    if not caller.is_admin:
        raise Forbidden("feedback needs an admin key")
    if not hmac.compare_digest(token, form_token(request, caller)):
        raise Forbidden("the form is out of date or came from another site; reload the page")
    _visible(request, caller, decision_id)
    if verdict not in ("correct", "wrong"):
        raise UserError("verdict must be correct or wrong")
    from adaptive_rag.api.teaching import give_feedback

    give_feedback(request.app.state, caller, decision_id, verdict == "correct", None, comment.strip() or None)
    return RedirectResponse(f"/ui/decisions/{decision_id}?sent=1", status_code=303)


@router.get("/overview", response_class=HTMLResponse)
def overview_page(request: Request, hours: float = 24.0):
    caller = ui_caller(request)
    hours = hours if hours in (1, 6, 24, 168) else 24.0
    now = time.time()
    filters: dict[str, Any] = {"since": now - hours * 3600}
    if not caller.is_admin:
        filters["owner"] = caller.name
    records = _log(request).list(**filters, limit=5000)
    refusals = [t for t in request.app.state.metrics.refusal_times if t >= filters["since"]] if caller.is_admin else []
    outcomes = _log(request).outcomes(since=filters["since"], limit=20_000) if caller.is_admin else []
    summary = views.overview(records, refusals, buckets=24 if hours in (1, 24) else 12, now=now,
                             start=filters["since"], outcomes=outcomes)
    return render(request, "overview.html", o=summary, hours=hours, capped=len(records) == 5000,
                  latency_bars=views.bars([b.latency_p50_ms for b in summary.buckets]),
                  cost_bars=views.bars([b.cost_per_query for b in summary.buckets]),
                  count_bars=views.bars([b.count for b in summary.buckets]),
                  refused_bars=views.bars([b.refused for b in summary.buckets]),
                  judged_bars=views.bars([b.judged for b in summary.buckets]),
                  learning=any(b.judged_n for b in summary.buckets))


# -- evaluations ----------------------------------------------------------------------------------
def _eval_root(request: Request) -> Path:
    return Path(request.app.state.settings.eval_results_dir).resolve()


def _runs(root: Path) -> list[dict]:
    import json

    runs = []
    if not root.is_dir():
        return runs
    for summary in sorted(root.glob("*/summary.json")):
        folder = summary.parent
        try:
            data = json.loads(summary.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            data = {}
        runs.append({"name": folder.name, "dataset": data.get("dataset", "?"), "split": data.get("split", "?"),
                     "policies": len(data.get("policies") or []), "modified": views.iso(summary.stat().st_mtime),
                     "has_plot": (folder / "cost_quality.png").is_file(),
                     "has_report": (folder / "report.html").is_file()})
    return runs


@router.get("/evaluations", response_class=HTMLResponse)
def evaluations_page(request: Request):
    ui_caller(request)
    root = _eval_root(request)
    return render(request, "evaluations.html", runs=_runs(root), root=str(root), exists=root.is_dir())


def _run_file(request: Request, run: str, name: str) -> Path:
    root = _eval_root(request)
    path = (root / run / name).resolve()
    if run not in {r["name"] for r in _runs(root)} or path.parent != root / run or not path.is_file():
        raise NotFoundError(f"no {name} for evaluation {run!r}")
    return path


@router.get("/evaluations/{run}", response_class=HTMLResponse)
def evaluation_page(request: Request, run: str):
    ui_caller(request)
    root = _eval_root(request)
    entry = next((r for r in _runs(root) if r["name"] == run), None)  # a listed run: no path games
    if entry is None:
        raise NotFoundError(f"no evaluation {run!r}")
    report = root / run / "report.md"
    report_md = report.read_text(encoding="utf-8") if report.is_file() else ""
    return render(request, "evaluation.html", run=entry, tables=_markdown_tables(report_md))


def _markdown_tables(text: str) -> list[dict]:
    """The report's sections: each a title and its parts in order, ("text", line) or ("table",
    rows), so that a template lays them out without rendering the report's Markdown as HTML."""
    blocks: list[dict] = []
    current = None
    for line in text.splitlines():
        if line.startswith("#"):
            current = {"title": line.lstrip("#").strip(), "parts": []}
            blocks.append(current)
            continue
        if current is None or not line.strip():
            continue
        if line.startswith("|"):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if all(set(c) <= set("-: ") for c in cells):
                continue  # the header separator
            if not current["parts"] or current["parts"][-1][0] != "table":
                current["parts"].append(("table", []))
            current["parts"][-1][1].append(cells)
        else:
            current["parts"].append(("text", line.strip()))
    return blocks


@router.get("/evaluations/{run}/{name}")
def evaluation_file(request: Request, run: str, name: str):
    ui_caller(request)
    if name not in ("cost_quality.png", "report.html", "report.md", "summary.json"):
        raise NotFoundError(f"no {name} for evaluation {run!r}")
    path = _run_file(request, run, name)
    response = FileResponse(path)
    # a report is the evaluator's own HTML: shown without scripts or access to this origin
    response.headers["Content-Security-Policy"] = "sandbox; default-src 'none'; img-src 'self'; style-src 'unsafe-inline'"
    return response


@router.get("/static/ui.css")
def stylesheet() -> Response:
    return FileResponse(HERE / "static" / "ui.css", media_type="text/css")
