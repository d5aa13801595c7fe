"""Times on the wire: unix seconds inside the system, ISO 8601 (UTC) beside them in JSON, and
either form accepted where a caller gives a time (`GET /v1/decisions?since=`)."""

from __future__ import annotations

import math
from datetime import datetime, timezone

from adaptive_rag.errors import UserError


def iso_time(epoch_s: float | None) -> str | None:
    """Unix seconds as ISO 8601 in UTC with milliseconds, `2025-06-01T14:03:22.120Z`; None stays None
    (so does a value no calendar holds: NaN, infinity, out of range)."""
    if epoch_s is None:
        return None
    try:
        moment = datetime.fromtimestamp(epoch_s, timezone.utc)
    except (ValueError, OverflowError, OSError):
        return None
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_time(name: str, text: str | None) -> float | None:
    """A time given as unix seconds (`1717250602`, `1717250602.5`) or ISO 8601 (`2025-06-01`,
    `2025-06-01T14:03:22Z`, `2025-06-01T16:03:22+02:00`; without an offset it is UTC), as unix
    seconds. Anything else (NaN, infinity, words) raises UserError naming `name`."""
    if text is None:
        return None
    value = text.strip()
    try:
        seconds = float(value)
    except ValueError:
        seconds = None
    if seconds is not None:
        if not math.isfinite(seconds):
            raise UserError(f"{name} must be a finite unix time or an ISO 8601 time, got {text!r}")
        return seconds
    try:
        moment = datetime.fromisoformat(value[:-1] + "+00:00" if value[-1:] in ("z", "Z") else value)
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=timezone.utc)
        return moment.timestamp()
    except (ValueError, OverflowError):
        raise UserError(f"{name} must be unix seconds or an ISO 8601 time such as 2025-06-01T14:03:22Z, "
                        f"got {text!r}") from None
