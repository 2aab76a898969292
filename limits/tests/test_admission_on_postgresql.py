"""PostgreSQL: an admission does not visit every request its lineage had.

Every request inserts a reservation and deletes it when settled, so until vacuum comes by
the lineage's index (limits_resv_live_idx) holds a dead entry per past request. A bitmap
scan (what the planner chose for the count) fetched the table page of every one of them
on every admission, inside the lineage's lock; an index scan marks the dead entries it
meets, and later scans skip their table pages (migration 0003)."""

from __future__ import annotations

import time

import pytest
from django.db import connection
from django.utils import timezone

from limits import db_store
from limits.counters import Demand
from limits.models import Reservation
from limits.selectors import limits_policy_for_key
from limits.services import limits_set
from limits.windows import window_bounds

pytestmark = pytest.mark.django_db(transaction=True)

PAST_REQUESTS = 8000
ADMISSIONS = 30


@pytest.fixture
def postgresql():
    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL-only (runs in the PostgreSQL half of the suite)")


def _table_pages_read() -> int:
    with connection.cursor() as cursor:
        # This backend's counters reach the view at the end of its next transaction.
        cursor.execute("SELECT pg_stat_force_next_flush()")
        cursor.execute(
            "SELECT heap_blks_hit + heap_blks_read FROM pg_statio_user_tables WHERE relname = %s",
            [Reservation._meta.db_table],
        )
        return cursor.fetchone()[0]


def test_an_admission_reads_a_few_table_pages_after_thousands_of_requests(postgresql, make_key):
    key, _ = make_key()
    limits_set(key=key, max_parallel=100, budget_tokens=10**9)
    policy = limits_policy_for_key(key_id=key.pk)
    now = time.time()
    with connection.cursor() as cursor:  # what thousands of settled requests leave behind
        cursor.execute(
            f"INSERT INTO {Reservation._meta.db_table} "  # noqa: S608
            "(limits_id, expires_at, window_start, tokens, usd) "
            "SELECT %s, %s + n, now(), 1, NULL FROM generate_series(1, %s) AS n",
            [policy.id, now + 3600, PAST_REQUESTS],
        )
        cursor.execute(
            f"DELETE FROM {Reservation._meta.db_table} WHERE limits_id = %s",  # noqa: S608
            [policy.id],
        )
    start, resets_at = window_bounds(policy.budget_period, timezone.now())
    demand = Demand(tokens=10, usd=None, window_start=start, resets_at=resets_at)

    def one_request() -> None:
        ticket = db_store.admit(policy=policy, demand=demand, hold_seconds=30, now=time.time())
        db_store.settle(ticket=ticket, tokens=10, usd=None)

    one_request()  # the first admission after the deletes meets every dead entry once
    before = _table_pages_read()
    for _ in range(ADMISSIONS):
        one_request()
    per_request = (_table_pages_read() - before) / ADMISSIONS
    # A request's own reservation: inserted, counted, deleted, a few pages. The 8,000
    # dead rows fill about 60 pages, which a bitmap scan fetched every time.
    assert per_request < 15, f"{per_request:.1f} table pages read per request"
