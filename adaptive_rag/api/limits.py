"""What one caller may ask for: per-request overrides within the bounds the admin set, and the
per-key request and token budgets.

Overrides: a `query` key may ask for `top_k` up to ARAG_MAX_REQUEST_TOP_K and override only the
thresholds named in ARAG_THRESHOLD_BOUNDS, each within its [low, high]; otherwise 400 naming the
bound. (A large top_k or a threshold that forces long context makes a request many times dearer.)
Admin keys, and the anonymous admin of an open loopback server, are not bounded. The deadline
(`timeout_s`) is always at most the server's ARAG_REQUEST_TIMEOUT_S.

Budgets: a key with `max_requests` or `max_tokens` (keys file) may spend that many within the last
ARAG_BUDGET_WINDOW_S seconds, counted from the decision log, so the count survives restarts and is
shared by replicas on one PostgreSQL decision store. A spent budget is a 429 with Retry-After.
"""

from __future__ import annotations

import time
from typing import Mapping

from adaptive_rag.api.admission import Busy
from adaptive_rag.api.auth import Caller
from adaptive_rag.errors import UserError


class BudgetSpent(Busy):
    """The key's request or token budget for the window is spent (HTTP 429)."""


class FeedbackCapped(BudgetSpent):
    """A `query` key has given its verdicts for the day (ARAG_KEY_FEEDBACK_CAP; HTTP 429, counted
    in `arag_feedback_capped_total`, not as an admission refusal)."""


def check_overrides(caller: Caller, settings, top_k: int | None, thresholds: Mapping[str, float] | None) -> None:
    if caller.is_admin:
        return
    if top_k is not None and top_k > settings.max_request_top_k:
        raise UserError(f"top_k {top_k} is above this server's bound for query keys, {settings.max_request_top_k} "
                        "(ARAG_MAX_REQUEST_TOP_K)")
    bounds = settings.threshold_bounds
    for name, value in (thresholds or {}).items():
        if name not in bounds:
            raise UserError(f"this server does not let query keys override the threshold {name!r}"
                            + (f"; allowed: {', '.join(sorted(bounds))}" if bounds else "")
                            + " (ARAG_THRESHOLD_BOUNDS)")
        low, high = bounds[name]
        if isinstance(value, (int, float)) and not low <= value <= high:
            raise UserError(f"threshold {name!r} must be within [{low:g}, {high:g}] for query keys, got {value!r}")


def check_budget(caller: Caller, log, window_s: float) -> None:
    """Raise BudgetSpent when the caller's key has spent its requests or tokens in the window."""
    key = caller.key
    if key is None or (key.max_requests is None and key.max_tokens is None) or log is None:
        return
    retry = int(min(window_s, 3600))
    requests, tokens = log.usage(key.name, time.time() - window_s)
    if key.max_requests is not None and requests >= key.max_requests:
        raise BudgetSpent(f"the key {key.name!r} has made its {key.max_requests} requests of the last "
                          f"{window_s:g} s; retry later", retry)
    if key.max_tokens is not None and tokens >= key.max_tokens:
        raise BudgetSpent(f"the key {key.name!r} has spent its {key.max_tokens} tokens of the last "
                          f"{window_s:g} s; retry later", retry)
