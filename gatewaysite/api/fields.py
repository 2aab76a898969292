"""Strict serializer fields for JSON bodies, and one RFC 3339 timestamp parser.

DRF's stock fields coerce: ``"true"`` becomes True, ``5`` becomes ``"5"``,
``"1.5"`` becomes 1.5, a date alone becomes midnight. An admin API that says
"boolean" in its schema should refuse anything else, so a script's mistake is a
400 rather than a silently different change.
"""

from __future__ import annotations

import datetime as dt
import math
import re

from django.utils.translation import gettext_lazy as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

_RFC3339 = re.compile(
    r"(?P<date>[0-9]{4}-[0-9]{2}-[0-9]{2})[Tt](?P<h>[0-9]{2}):(?P<m>[0-9]{2}):(?P<s>[0-9]{2})(?:\.(?P<frac>[0-9]+))?"
    r"(?P<tz>[Zz]|[+-][0-9]{2}:[0-9]{2})"
)
# Text the databases can store: PostgreSQL refuses NUL in text, so it is refused up front.
NO_NUL_PATTERN = "^[^\\x00]*$"
_EARLIEST = dt.datetime.min.replace(tzinfo=dt.UTC)
_LATEST = dt.datetime.max.replace(tzinfo=dt.UTC)


def _offset(tz: str) -> dt.timedelta | None:
    if tz in ("Z", "z"):
        return dt.timedelta(0)
    hours, minutes = int(tz[1:3]), int(tz[4:6])
    if hours > 23 or minutes > 59:
        return None
    return (1 if tz[0] == "+" else -1) * dt.timedelta(hours=hours, minutes=minutes)


def parse_rfc3339(value: str) -> dt.datetime | None:
    """An aware UTC datetime for an RFC 3339 timestamp, or None if it is not one.

    A valid timestamp outside what Python can hold (year 0, or a far offset at
    the edge of year 1 or 9999) is clamped to the earliest or latest instant: as
    an expiry or as a bound of a time range that means the same. A leap second
    (``:60``) is read as the start of the next second.
    """
    match = _RFC3339.fullmatch(value)
    if not match:
        return None
    year, month, day = (int(part) for part in match["date"].split("-"))
    hour, minute, second = int(match["h"]), int(match["m"]), int(match["s"])
    offset = _offset(match["tz"])
    if offset is None or hour > 23 or minute > 59 or second > 60:
        return None
    try:
        dt.date(year or 4, month, day)  # year 0 is a leap year, like year 4
    except ValueError:
        return None
    if year == 0:
        return _EARLIEST
    micro = int((match["frac"] or "")[:6].ljust(6, "0"))
    local = dt.datetime(year, month, day, hour, minute, min(second, 59), micro, tzinfo=dt.UTC)
    try:
        return local - offset + dt.timedelta(seconds=second - min(second, 59))
    except OverflowError:
        return _EARLIEST if year < 5000 else _LATEST


class StrictCharField(serializers.CharField):
    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictBooleanField(serializers.BooleanField):
    default_error_messages = {"invalid": _("Must be true or false.")}

    def to_internal_value(self, data):
        if not isinstance(data, bool):
            self.fail("invalid")
        return data


class StrictIntegerField(serializers.IntegerField):
    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictFloatField(serializers.FloatField):
    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, (int, float)):
            self.fail("invalid")
        try:
            value = float(data)
        except OverflowError:
            self.fail("invalid")
        if not math.isfinite(value):
            self.fail("invalid")
        return value


@extend_schema_field(OpenApiTypes.DATETIME)
class RFC3339DateTimeField(serializers.DateTimeField):
    """Accepts only full RFC 3339 timestamps with an offset (``2026-01-31T12:00:00Z``)."""

    default_error_messages = {
        "invalid": _("Must be an RFC 3339 timestamp with an offset, e.g. 2026-01-31T12:00:00Z."),
    }

    def to_internal_value(self, value):
        parsed = parse_rfc3339(value) if isinstance(value, str) else None
        if parsed is None:
            self.fail("invalid")
        return parsed
