"""The request log list's date drill-down, built from index seeks along created_at.

Why not Django's own: ModelAdmin.date_hierarchy lists the years, months or days that
hold rows with one `SELECT DISTINCT` over the truncated date of every matching row,
run on each view of the list. On a log table of a million rows and more that is a
scan of the whole table (or of the whole matching set) for a row of links. Here each
listed period costs one index seek ("the first log at or after t"), so the cost
follows the number of periods shown, not the number of rows: docs/performance.md has
the list's timings at a million rows, the one-day drill-down among them.

RequestLogAdmin keeps `date_hierarchy = "created_at"` (the admin then reads and
validates the created_at__year/month/day parameters and filters by them as usual);
only the links above the list come from here, through the change_list.html template
(`cl.cheap_date_hierarchy`), in the shape of Django's `date_hierarchy` context.
"""

from __future__ import annotations

import datetime as dt

from django.contrib.admin.views.main import ChangeList
from django.utils import formats, timezone
from django.utils.functional import cached_property
from django.utils.text import capfirst

from logs.models import RequestLog


class RequestLogChangeList(ChangeList):
    @cached_property
    def cheap_date_hierarchy(self) -> dict:
        """Django's date_hierarchy context, built by seeking along the created_at index.

        Django's own runs DISTINCT over the truncated date of every matching row.
        Here each listed period costs one index seek ("the first log at or after
        t"), so a month with logs on 3 days costs 4 short queries whatever the
        row count. A period is listed when any log falls in it; with other
        filters on, it can hold no match, which the list then says.
        """
        year = _int(self.params.get("created_at__year"))
        month = _int(self.params.get("created_at__month"))
        day = _int(self.params.get("created_at__day"))

        def link(filters):
            return self.get_query_string(filters, ["created_at__"])

        try:
            if year and month and day:
                the_day = dt.date(year, month, day)
            elif year and month:
                dt.date(year, month, 1)
        except ValueError:
            return {"show": False}
        if not (year or month or day):
            oldest, newest = _first_at_or_after(None, None), _last()
            if oldest is None:
                return {"show": False}
            if oldest.year != newest.year:
                years = [d.year for d in _periods(dt.date(oldest.year, 1, 1), None, _next_year)]
                return {
                    "show": True,
                    "back": None,
                    "choices": [
                        {"link": link({"created_at__year": y}), "title": str(y)} for y in years
                    ],
                }
            year = oldest.year
            if oldest.month == newest.month:
                month = oldest.month
        if year and month and day:
            return {
                "show": True,
                "back": {
                    "link": link({"created_at__year": year, "created_at__month": month}),
                    "title": capfirst(formats.date_format(the_day, "YEAR_MONTH_FORMAT")),
                },
                "choices": [{"title": capfirst(formats.date_format(the_day, "MONTH_DAY_FORMAT"))}],
            }
        if year and month:
            first = dt.date(year, month, 1)
            days = _periods(first, _next_month(first), _next_day)
            return {
                "show": True,
                "back": {"link": link({"created_at__year": year}), "title": str(year)},
                "choices": [
                    {
                        "link": link(
                            {
                                "created_at__year": year,
                                "created_at__month": month,
                                "created_at__day": d.day,
                            }
                        ),
                        "title": capfirst(formats.date_format(d, "MONTH_DAY_FORMAT")),
                    }
                    for d in days
                ],
            }
        if year:
            first = dt.date(year, 1, 1)
            months = _periods(first, _next_year(first), _next_month)
            return {
                "show": True,
                "back": {"link": link({}), "title": "All dates"},
                "choices": [
                    {
                        "link": link({"created_at__year": year, "created_at__month": m.month}),
                        "title": capfirst(formats.date_format(m, "YEAR_MONTH_FORMAT")),
                    }
                    for m in months
                ],
            }
        return {"show": False}


def _int(value) -> int | None:
    try:
        return int(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


def _at(d: dt.date) -> dt.datetime:
    return timezone.make_aware(dt.datetime.combine(d, dt.time.min))


def _next_year(d: dt.date) -> dt.date:
    return dt.date(d.year + 1, 1, 1)


def _next_month(d: dt.date) -> dt.date:
    return dt.date(d.year + (d.month == 12), d.month % 12 + 1, 1)


def _first_at_or_after(start: dt.date | None, end: dt.date | None) -> dt.datetime | None:
    rows = RequestLog.objects.all()
    if start is not None:
        rows = rows.filter(created_at__gte=_at(start))
    if end is not None:
        rows = rows.filter(created_at__lt=_at(end))
    value = rows.order_by("created_at", "id").values_list("created_at", flat=True).first()
    return timezone.localtime(value) if value is not None else None


def _last() -> dt.datetime | None:
    value = (
        RequestLog.objects.order_by("-created_at", "-id")
        .values_list("created_at", flat=True)
        .first()
    )
    return timezone.localtime(value) if value is not None else None


def _next_day(d: dt.date) -> dt.date:
    return d + dt.timedelta(days=1)


_PERIOD_START = {
    _next_year: lambda d: dt.date(d.year, 1, 1),
    _next_month: lambda d: dt.date(d.year, d.month, 1),
    _next_day: lambda d: d,
}


def _periods(start: dt.date, end: dt.date | None, following) -> list[dt.date]:
    """The periods from start (to end) that hold a log: one index seek each, plus one."""
    found = []
    cursor = start
    while end is None or cursor < end:
        hit = _first_at_or_after(cursor, end)
        if hit is None:
            break
        period = _PERIOD_START[following](hit.date())
        found.append(period)
        cursor = following(period)
    return found
