"""Budget windows and the rolling minute: pure arithmetic on UTC times, no I/O.

A budget window is a UTC calendar day, a week starting on Monday, a calendar month,
or "total" (one window since the epoch, which never resets).
"""

from __future__ import annotations

import datetime as dt
import functools
import math

DAY = "day"
WEEK = "week"
MONTH = "month"
TOTAL = "total"
PERIODS = (DAY, WEEK, MONTH, TOTAL)

# The rolling window of rpm_limit and tpm_limit.
ROLLING_SECONDS = 60.0

TOTAL_START = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def window_start(period: str, at: dt.datetime) -> dt.datetime:
    """The start (UTC) of the budget window that holds `at`."""
    at = at.astimezone(dt.UTC)
    midnight = at.replace(hour=0, minute=0, second=0, microsecond=0)
    if period == DAY:
        return midnight
    if period == WEEK:
        return midnight - dt.timedelta(days=midnight.weekday())
    if period == MONTH:
        return midnight.replace(day=1)
    if period == TOTAL:
        return TOTAL_START
    raise ValueError(f"unknown budget period {period!r}")


def window_end(period: str, at: dt.datetime) -> dt.datetime | None:
    """When the window that holds `at` resets; None for "total", which never does."""
    start = window_start(period, at)
    if period == DAY:
        return start + dt.timedelta(days=1)
    if period == WEEK:
        return start + dt.timedelta(days=7)
    if period == MONTH:
        return (start + dt.timedelta(days=32)).replace(day=1)
    return None


def window_bounds(period: str, at: dt.datetime) -> tuple[dt.datetime, dt.datetime | None]:
    """(window_start, window_end) of the window that holds `at`: worked out once per UTC
    day and period, since every admission asks (about 15 µs of datetime arithmetic)."""
    return _bounds_on(period, at.astimezone(dt.UTC).date())


@functools.lru_cache(maxsize=64)
def _bounds_on(period: str, day: dt.date) -> tuple[dt.datetime, dt.datetime | None]:
    midnight = dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)
    return window_start(period, midnight), window_end(period, midnight)


def seconds_until(later: dt.datetime | float, now: dt.datetime | float) -> int:
    """Whole seconds from now until `later`, rounded up, at least 1 (a Retry-After)."""
    if isinstance(later, dt.datetime):
        later = later.timestamp()
    if isinstance(now, dt.datetime):
        now = now.timestamp()
    return max(1, math.ceil(later - now))
