"""Budget periods as UTC calendar windows: [start, reset) in epoch seconds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

PERIODS = ("daily", "weekly", "monthly", "total")


def window(period: str, now: float) -> tuple[float, float | None]:
    """The window of `period` holding `now`: its start and when it resets (None: never)."""
    if period == "total":
        return 0.0, None
    t = datetime.fromtimestamp(now, UTC)
    day = t.replace(hour=0, minute=0, second=0, microsecond=0)
    if period == "daily":
        start, end = day, day + timedelta(days=1)
    elif period == "weekly":
        start = day - timedelta(days=day.weekday())  # weeks start on Monday (ISO 8601)
        end = start + timedelta(days=7)
    elif period == "monthly":
        start = day.replace(day=1)
        end = (start + timedelta(days=32)).replace(day=1)
    else:
        raise ValueError(f"unknown budget period {period!r}; use one of {', '.join(PERIODS)}")
    return start.timestamp(), end.timestamp()


def iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
