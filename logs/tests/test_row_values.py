"""The proxy's two log writes (logs/sql.py) store each value exactly as the ORM would."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal

import pytest
from django.db import DEFAULT_DB_ALIAS, connections

from logs import sql
from logs.models import RequestLog

SAMPLES = [
    None,
    0,
    7,
    65_535,
    2**31 - 1,
    True,
    False,
    "",
    "POST",
    "gpt-4o-mini",
    RequestLog.State.FINISHED,  # a str enum: not a plain str
    Decimal("0.000123456789"),
    uuid.UUID("12345678-1234-5678-1234-567812345678"),
    dt.datetime(2026, 12, 1, 22, 30, tzinfo=dt.UTC),
]


def _fits(field, value) -> bool:
    """Whether the ORM itself would take the value for the field (else nothing to compare)."""
    try:
        field.get_db_prep_save(value, connections[DEFAULT_DB_ALIAS])
    except Exception:  # noqa: BLE001 - any refusal: nothing to compare
        return False
    return True


@pytest.mark.django_db
@pytest.mark.parametrize("field", sql._FIELDS, ids=lambda f: f.attname)
def test_every_value_is_stored_as_the_orm_would_store_it(field):
    conn = connections[DEFAULT_DB_ALIAS]
    plain = sql._plain_values(conn.vendor)
    compared = 0
    for value in SAMPLES:
        if not _fits(field, value):
            continue
        fast = sql._prep(field, value, conn, plain)
        orm = field.get_db_prep_save(value, conn)
        assert fast == orm and type(fast) is type(orm), (field.attname, value, fast, orm)
        compared += 1
    assert compared >= 2  # None and at least one value of the field's own kind
