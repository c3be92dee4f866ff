"""UTC calendar helpers. Time is always passed in (``now`` in unix seconds)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

DAY = 86_400


def utc(now: int) -> datetime:
    return datetime.fromtimestamp(now, UTC)


def day_bucket(now: int) -> str:
    return utc(now).strftime("%Y-%m-%d")


def hour_bucket(now: int) -> str:
    return utc(now).strftime("%Y-%m-%d-%H")


def month_bucket(now: int) -> str:
    return utc(now).strftime("%Y-%m")


def next_midnight(now: int) -> int:
    return (now // DAY + 1) * DAY


def days_back(now: int, n: int) -> list[str]:
    """The ``n`` UTC day buckets ending today, oldest first."""
    today = utc(now).date()
    return [(today - timedelta(days=i)).isoformat() for i in range(n - 1, -1, -1)]


def hours_back(now: int, n: int) -> list[str]:
    """The ``n`` UTC hour buckets ending with the current hour, oldest first."""
    top = utc(now - now % 3600)
    return [(top - timedelta(hours=i)).strftime("%Y-%m-%d-%H") for i in range(n - 1, -1, -1)]
