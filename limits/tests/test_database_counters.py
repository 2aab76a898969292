"""The database's counters over time, with the clock given: the rolling minute counted
per second, in-flight reservations that expire, and settlement's adjustments."""

from __future__ import annotations

import datetime as dt
import threading
import time
from decimal import Decimal

import pytest
from django.db import connection, connections, transaction
from django.db.models import Sum

from limits import db_store, windows
from limits.counters import Demand, counters_window_totals
from limits.exceptions import BudgetExceeded, RateLimited
from limits.models import Spend
from limits.selectors import limits_policy_for_key
from limits.services import limits_set
from testing.helpers import wait_until

pytestmark = pytest.mark.django_db

T0 = 1_800_000_000.25  # a fixed epoch second, a quarter in
WINDOW = dt.datetime(2027, 1, 1, tzinfo=dt.UTC)


def demand(tokens: int = 0, usd: Decimal | None = None) -> Demand:
    return Demand(tokens=tokens, usd=usd, window_start=WINDOW, resets_at=None)


def policy_of(make_key, **limits):
    key, _ = make_key()
    limits_set(key=key, **limits)
    return limits_policy_for_key(key_id=key.pk)


def admit(policy, at: float, **wanted):
    return db_store.admit(policy=policy, demand=demand(**wanted), hold_seconds=30, now=at)


def settle(ticket, tokens: int, usd: Decimal | None = None) -> None:
    db_store.settle(ticket=ticket, tokens=tokens, usd=usd)


@pytest.mark.parametrize(
    ("later", "admitted"),
    [
        (59.0, False),  # inside the minute
        (60.5, False),  # 60 s after the first request's second began: still counted
        (61.0, True),  # its second has left the count
    ],
)
def test_rpm_counts_a_rolling_minute_in_whole_seconds_and_never_less_than_60_s(
    make_key, later, admitted
):
    policy = policy_of(make_key, rpm_limit=2)
    admit(policy, T0)
    admit(policy, T0 + 1)
    if admitted:
        admit(policy, T0 - 0.25 + later)
    else:
        with pytest.raises(RateLimited) as refused:
            admit(policy, T0 - 0.25 + later)
        # Until the oldest counted second leaves: 61 s after it began.
        assert refused.value.retry_after == windows.seconds_until(T0 - 0.25 + 61, T0 - 0.25 + later)


def test_tpm_counts_what_was_recorded_once_a_request_is_settled(make_key):
    policy = policy_of(make_key, tpm_limit=1000)
    ticket = admit(policy, T0, tokens=1000)  # reserved: the minute's tokens reach the limit
    with pytest.raises(RateLimited):
        admit(policy, T0 + 1, tokens=10)
    settle(ticket, tokens=100)  # recorded: 100 of the minute's 1000
    admit(policy, T0 + 2, tokens=10)


def test_max_parallel_frees_a_place_when_settled_or_when_the_reservation_expires(make_key):
    policy = policy_of(make_key, max_parallel=1)
    first = admit(policy, T0)
    with pytest.raises(RateLimited):
        admit(policy, T0 + 1)
    settle(first, tokens=0)
    admit(policy, T0 + 2)  # never settled, as if its worker died
    with pytest.raises(RateLimited):
        admit(policy, T0 + 31)
    admit(policy, T0 + 32.5)  # 30 s hold passed


def test_a_budget_counts_spend_and_reservations_and_shows_them(make_key):
    policy = policy_of(make_key, budget_usd=Decimal("1.00"), budget_tokens=10_000)
    first = admit(policy, T0, tokens=400, usd=Decimal("0.40"))
    second = admit(policy, T0, tokens=400, usd=Decimal("0.40"))
    with pytest.raises(BudgetExceeded):
        admit(policy, T0, tokens=400, usd=Decimal("0.40"))
    settle(first, tokens=100, usd=Decimal("0.05"))
    totals = counters_window_totals(windows_of={policy.id: WINDOW})[(policy.id, WINDOW)]
    assert (totals[0], totals[1]) == (100, Decimal("0.05"))
    assert (totals[2], totals[3]) == (400, Decimal("0.40"))  # the second, still reserved
    admit(policy, T0 + 1, tokens=400, usd=Decimal("0.40"))
    with pytest.raises(BudgetExceeded):
        admit(policy, T0 + 1, tokens=400, usd=Decimal("0.40"))
    settle(second, tokens=0, usd=Decimal(0))
    admit(policy, T0 + 2, tokens=400, usd=Decimal("0.40"))


def test_a_settlement_after_its_reservation_was_deleted_still_spends(make_key):
    policy = policy_of(make_key, max_parallel=1, budget_tokens=1000)
    late = admit(policy, T0, tokens=100)
    admit(policy, T0 + 31, tokens=100)  # deletes the late one's row: expired
    settle(late, tokens=70)  # a request that outlived its hold still spends what it used
    totals = counters_window_totals(windows_of={policy.id: WINDOW})[(policy.id, WINDOW)]
    assert (totals[0], totals[2]) == (70, 100)  # spent; the last one still reserved


@pytest.mark.django_db(transaction=True)
def test_a_settlement_opening_a_budget_window_and_an_admission_never_deadlock(make_key):
    """A settlement that holds the second's counter and then records the window's first
    spend (a new row, whose foreign key PostgreSQL checks by sharing the lineage's row)
    while an admission holds the lineage and waits for that counter: with the lineage
    locked FOR UPDATE, the two waited for each other until PostgreSQL killed one of them
    (a request refused or its settlement lost). The admission's lock must leave the
    foreign key's check free."""
    if connection.vendor != "postgresql":
        pytest.skip("SQLite takes one write lock for the whole file: nothing to wait for crosswise")
    policy = policy_of(make_key, rpm_limit=1000, budget_tokens=10**9)
    earlier = admit(policy, T0, tokens=10)
    statements = db_store.settle_statements(ticket=earlier, tokens=5, usd=None)
    *first, spend = statements
    assert "limits_spend" in spend[0]  # the window's first spend is the settlement's last write

    admitted = []

    def admission():
        try:
            admitted.append(admit(policy, T0 + 0.5, tokens=10))  # the same second's counter
        except Exception as exc:  # noqa: BLE001 - reported below
            admitted.append(exc)
        finally:
            connections.close_all()

    with transaction.atomic(), connection.cursor() as settler:
        for sql, params in first:  # holds the reservation and the second's counter
            settler.execute(sql, params)
        waiting = threading.Thread(target=admission)
        waiting.start()
        wait_until(
            lambda: _waiting_on_a_lock("limits_admit("),
            timeout=10,
            message="the admission never waited for the second's counter",
        )
        settler.execute(*spend)  # the new spend row's foreign key check
    waiting.join(timeout=30)
    assert not waiting.is_alive()
    assert len(admitted) == 1 and not isinstance(admitted[0], Exception), admitted
    totals = counters_window_totals(windows_of={policy.id: WINDOW})[(policy.id, WINDOW)]
    assert totals[0] == 5  # the settlement was recorded


def _waiting_on_a_lock(query_part: str) -> bool:
    with connections["default"].cursor() as cursor:
        cursor.execute("SELECT pg_stat_clear_snapshot()")  # a transaction's view is kept
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
            "AND position(%s in query) > 0 AND pid <> pg_backend_pid()",
            [query_part],
        )
        return cursor.fetchone()[0] > 0


@pytest.mark.django_db(transaction=True)
def test_admissions_settlements_and_limit_edits_from_many_connections_never_fail(make_key):
    """What a busy key sees: admissions and settlements on several connections at once,
    budget windows opening (each one's first spend is a new row) and the admin editing
    the key's limits meanwhile. Not one statement may fail: on PostgreSQL, with the
    lineage locked FOR UPDATE, some were killed as deadlocked and the rest waited a second
    each; on SQLite every write waits for the file's one write lock."""
    key, _ = make_key()
    limits_set(key=key, rpm_limit=10**9, max_parallel=10**6, budget_tokens=10**15)
    deadline = time.monotonic() + 3
    errors, served = [], []

    def requests_of_one_connection():
        try:
            n = 0
            while time.monotonic() < deadline:
                n += 1
                policy = limits_policy_for_key(key_id=key.pk)
                window = WINDOW + dt.timedelta(hours=n // 10)  # a new window every 10
                wanted = Demand(tokens=100, usd=None, window_start=window, resets_at=None)
                ticket = db_store.admit(
                    policy=policy, demand=wanted, hold_seconds=30, now=time.time()
                )
                db_store.settle(ticket=ticket, tokens=50, usd=None)
                served.append(1)
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connections.close_all()

    def edits():
        try:
            n = 0
            while time.monotonic() < deadline:
                n += 1
                limits_set(key=key, rpm_limit=10**9 - n % 7)
                time.sleep(0.005)
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=requests_of_one_connection) for _ in range(5)]
    threads.append(threading.Thread(target=edits))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert errors == []
    assert len(served) > 100  # no second-long waits either
    spent = Spend.objects.filter(limits__links__key=key).aggregate(tokens=Sum("spent_tokens"))
    assert spent["tokens"] == 50 * len(served)  # every settlement spent, once
