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
from limits.models import Reservation, Spend
from limits.selectors import limits_policy_for_key
from limits.services import limits_set

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


def test_settled_reservations_count_as_spent_and_fold_exactly(make_key):
    """A settlement writes only its own reservation; admissions fold the settled ones
    into the window's spend and the seconds' tokens, FOLD_AFTER at a time. Before and
    after a fold, the budget and the rolling minute count what was recorded, once."""
    key, _ = make_key()
    limits_set(key=key, tpm_limit=10**9, max_parallel=1000, budget_tokens=10**9)
    policy = limits_policy_for_key(key_id=key.pk)
    served = db_store.FOLD_AFTER + 5
    for n in range(served):
        ticket = admit(policy, T0 + n * 0.1, tokens=100)
        settle(ticket, tokens=40)
    settled = Reservation.objects.exclude(settled_tokens=None)
    assert 0 < settled.count() < db_store.FOLD_AFTER  # one fold, the rest still waiting
    spent = Spend.objects.get(limits_id=policy.id, window_start=WINDOW).spent_tokens
    assert spent == 40 * (served - settled.count())  # the folded ones, as recorded
    assert not Reservation.objects.filter(settled_tokens=None).exists()
    totals = counters_window_totals(windows_of={policy.id: WINDOW})[(policy.id, WINDOW)]
    assert totals == (40 * served, Decimal(0), 0, Decimal(0))

    # The rolling minute counts 40 per request, not the 100 reserved: one more request of
    # 100 tokens fits under a tpm_limit of 40 * served + 100, and then nothing does.
    limits_set(key=key, tpm_limit=40 * served + 100)
    policy = limits_policy_for_key(key_id=key.pk)
    admit(policy, T0 + served * 0.1, tokens=100)
    with pytest.raises(RateLimited):
        admit(policy, T0 + served * 0.1, tokens=1)


def test_a_request_that_ends_after_its_reservation_expired_still_spends(make_key):
    policy = policy_of(make_key, max_parallel=1, budget_tokens=1000)
    late = admit(policy, T0, tokens=100)  # held for 30 s
    admit(policy, T0 + 31, tokens=100)  # the expired one no longer counts
    settle(late, tokens=70)  # but its row is kept for another hold, so this counts
    totals = counters_window_totals(windows_of={policy.id: WINDOW})[(policy.id, WINDOW)]
    assert totals[0] == 70


def test_a_dead_workers_reservation_is_deleted_after_a_second_hold(make_key):
    policy = policy_of(make_key, max_parallel=1)
    dead = admit(policy, T0)  # never settled
    settle(admit(policy, T0 + 59), tokens=0)  # expired, kept for a late settlement
    assert Reservation.objects.filter(pk=dead.reservation_id).exists()
    admit(policy, T0 + 61)  # expired 31 s ago: more than a hold
    assert not Reservation.objects.filter(pk=dead.reservation_id).exists()


def test_a_settlement_after_its_reservation_was_deleted_still_spends(make_key):
    policy = policy_of(make_key, max_parallel=1, budget_tokens=1000)
    late = admit(policy, T0, tokens=100)
    settle(admit(policy, T0 + 59, tokens=100), tokens=0)
    admit(policy, T0 + 61, tokens=100)  # deletes the late one's row: expired for a hold
    assert not Reservation.objects.filter(pk=late.reservation_id).exists()
    settle(late, tokens=70)
    totals = counters_window_totals(windows_of={policy.id: WINDOW})[(policy.id, WINDOW)]
    assert (totals[0], totals[2]) == (70, 100)  # spent; the last one still reserved


def test_what_a_request_admitted_under_a_budget_records_is_spent_whatever_the_limits_become(
    make_key, monkeypatch
):
    """The ticket's policy decides whether a request spends, as with Redis: not the
    policy in force when an admission folds its settled reservation."""
    monkeypatch.setattr(db_store, "FOLD_AFTER", 1)
    key, _ = make_key()
    limits_set(key=key, max_parallel=10, budget_tokens=1000)
    budgeted = admit(limits_policy_for_key(key_id=key.pk), T0, tokens=100)
    settle(budgeted, tokens=70)
    limits_set(key=key, budget_tokens=None)
    unbudgeted = admit(limits_policy_for_key(key_id=key.pk), T0 + 1, tokens=100)  # folds
    settle(unbudgeted, tokens=50)
    limits_set(key=key, budget_tokens=1000)
    policy = limits_policy_for_key(key_id=key.pk)
    admit(policy, T0 + 2, tokens=100)  # folds the unbudgeted one: no spend
    totals = counters_window_totals(windows_of={policy.id: WINDOW})[(policy.id, WINDOW)]
    assert totals[0] == 70


def test_settled_reservations_left_by_a_limits_edit_still_correct_the_minute(make_key):
    key, _ = make_key()
    limits_set(key=key, tpm_limit=1000, max_parallel=10)
    ticket = admit(limits_policy_for_key(key_id=key.pk), T0, tokens=1000)  # the minute: full
    settle(ticket, tokens=100)  # recorded: 100
    limits_set(key=key, max_parallel=None)  # rate limits only: no reservations of its own
    admit(limits_policy_for_key(key_id=key.pk), T0 + 1, tokens=10)


@pytest.mark.django_db(transaction=True)
def test_settlements_and_admissions_never_wait_for_each_other(make_key, monkeypatch):
    """A settlement writes its own reservation only: an admission of the same key, in the
    same second, folding the settled reservations, goes through while a settlement's
    transaction is still open. (When settlements wrote the window's spend and the
    second's counter, an admission waited for them, and once PostgreSQL killed one of
    the two as deadlocked: a request refused or its settlement lost.)"""
    monkeypatch.setattr(db_store, "FOLD_AFTER", 1)
    policy = policy_of(make_key, rpm_limit=1000, tpm_limit=10**6, budget_tokens=10**9)
    done = admit(policy, T0, tokens=10)
    settle(done, tokens=4)  # settled: the next admission folds it
    open_one = admit(policy, T0 + 0.1, tokens=10)
    settle(admit(policy, T0 + 0.2, tokens=10), tokens=3)  # the one the admission below folds
    statements = db_store.settle_statements(ticket=open_one, tokens=5, usd=None)
    admitted = []

    def admission():
        try:
            admitted.append(admit(policy, T0 + 0.5, tokens=10))  # the same second's counter
        except Exception as exc:  # noqa: BLE001 - reported below
            admitted.append(exc)
        finally:
            connections.close_all()

    if connection.vendor == "sqlite":
        # SQLite has one write lock for the whole file: an open write holds up every
        # other. The two one after the other, the admission first: as on PostgreSQL, it
        # does not see that settlement.
        admission()
        for sql, params in statements:
            with connection.cursor() as cursor:
                cursor.execute(sql, params)
    else:
        with transaction.atomic(), connection.cursor() as settler:
            for sql, params in statements:
                settler.execute(sql, params)
            waiting = threading.Thread(target=admission)
            waiting.start()
            waiting.join(timeout=10)
            assert not waiting.is_alive(), "the admission waited for an open settlement"
    assert len(admitted) == 1 and not isinstance(admitted[0], Exception), admitted
    assert Spend.objects.get(limits_id=policy.id, window_start=WINDOW).spent_tokens == 4 + 3
    totals = counters_window_totals(windows_of={policy.id: WINDOW})[(policy.id, WINDOW)]
    assert totals[0] == 4 + 3 + 5  # the folded ones and the one settled meanwhile
    assert totals[2] == 10  # the last admission's reservation


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
    # Every settlement spent once: in a window's row, or settled and not folded yet.
    policy = limits_policy_for_key(key_id=key.pk)
    folded = Spend.objects.filter(limits_id=policy.id).aggregate(tokens=Sum("spent_tokens"))
    waiting = Reservation.objects.filter(limits_id=policy.id, budgeted=True).aggregate(
        tokens=Sum("settled_tokens")
    )
    assert folded["tokens"] > 0
    assert folded["tokens"] + (waiting["tokens"] or 0) == 50 * len(served)
