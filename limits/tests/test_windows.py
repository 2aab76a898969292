"""Budget windows: UTC day, week from Monday, calendar month, total."""

from __future__ import annotations

import datetime as dt

import pytest

from limits import windows

UTC = dt.UTC


def at(*args) -> dt.datetime:
    return dt.datetime(*args, tzinfo=UTC)


@pytest.mark.parametrize(
    ("period", "moment", "start", "end"),
    [
        ("day", at(2026, 12, 1, 0, 16), at(2026, 12, 1), at(2026, 12, 2)),
        ("day", at(2026, 12, 31, 23, 59, 59), at(2026, 12, 31), at(2027, 1, 1)),
        # 2026-12-01 is a Tuesday: its week began on Monday 2026-11-30.
        ("week", at(2026, 12, 1, 12), at(2026, 11, 30), at(2026, 12, 7)),
        ("week", at(2026, 11, 30, 0, 0), at(2026, 11, 30), at(2026, 12, 7)),
        ("week", at(2026, 12, 6, 23, 59), at(2026, 11, 30), at(2026, 12, 7)),
        ("month", at(2026, 12, 15), at(2026, 12, 1), at(2027, 1, 1)),
        ("month", at(2027, 2, 28, 23), at(2027, 2, 1), at(2027, 3, 1)),
        ("month", at(2028, 1, 31), at(2028, 1, 1), at(2028, 2, 1)),
        ("total", at(2026, 12, 1), windows.TOTAL_START, None),
    ],
)
def test_window_holds_the_moment_and_resets_at_its_end(period, moment, start, end):
    assert windows.window_start(period, moment) == start
    assert windows.window_end(period, moment) == end
    assert windows.window_bounds(period, moment) == (start, end)


def test_a_time_in_another_zone_is_placed_in_its_utc_day():
    tokyo = dt.timezone(dt.timedelta(hours=9))
    moment = dt.datetime(2026, 12, 2, 8, 0, tzinfo=tokyo)  # 2026-12-01 23:00 UTC
    assert windows.window_start("day", moment) == at(2026, 12, 1)
    assert windows.window_bounds("day", moment) == (at(2026, 12, 1), at(2026, 12, 2))


@pytest.mark.parametrize(
    ("later", "now", "seconds"),
    [(100.0, 99.9, 1), (100.0, 40.0, 60), (100.0, 100.0, 1), (100.0, 150.0, 1), (100.5, 40.0, 61)],
)
def test_retry_after_is_whole_seconds_rounded_up_and_at_least_one(later, now, seconds):
    assert windows.seconds_until(later, now) == seconds


def test_an_unknown_period_is_refused():
    with pytest.raises(ValueError, match="unknown budget period"):
        windows.window_start("year", at(2026, 1, 1))
