"""The counters in the database (the default): admission and settlement in plain SQL.

Per lineage (one KeyLimits row):
  SecondCount  requests admitted per second and their tokens: the rolling minute
               (rpm_limit, tpm_limit) is the sum of the last 61 seconds' rows, so the
               count costs the same at 1 request a minute or 1,000 a second
  Reservation  one row per request in flight, deleted when it is settled (max_parallel
               and what budgets have reserved); expired rows are a dead worker's
  Spend        what each budget window spent, as recorded

Admission locks the lineage's KeyLimits row, prunes, counts, decides and reserves, in
one transaction: on PostgreSQL one call of the `limits_admit` function (migration 0004),
one round trip; on SQLite one short IMMEDIATE transaction (its write lock is the lock).
Settlement only adds and deletes (no read, no lock: increments commute), so it can ride
in the same statement as the log row's last write (`settle_statements`). It never waits
for the lineage's lock: admission locks the row FOR NO KEY UPDATE, which the foreign-key
check of a window's first Spend row passes (with FOR UPDATE, a settlement waiting there
while holding the second's counter, and an admission waiting for that counter while
holding the lock, deadlocked).

Through the ORM, admission took 3.2 ms p50 on SQLite and 3.9 ms on PostgreSQL
(in-process, loaded machine), and counted every row of the rolling minute (tens of
thousands at the bench's rate); see the README's Limits and budgets for what this costs.
"""

from __future__ import annotations

import decimal
import functools
import math
from decimal import Decimal

from django.db import connection

from gatewaysite.short_transaction import short_transaction
from limits import counters  # which imports this module: its names are read at call time
from limits.exceptions import RateLimited
from limits.models import Reservation, SecondCount, Spend

# A request counts for the seconds floor(now) - 60 .. floor(now): never fewer than the
# 60 s that rpm_limit promises, at most one second more.
COUNTED_SECONDS = 61

_USD_CONTEXT = decimal.Context(prec=24)
_USD_STEP = Decimal("1e-10")

_LIMITS = Reservation._meta.get_field("limits")
_WINDOW = Reservation._meta.get_field("window_start")


@functools.cache
def _table(model) -> str:
    return connection.ops.quote_name(model._meta.db_table)


def _usd(value) -> Decimal:
    """A sum of USD as the ORM would give it (SQLite sums decimals as floats)."""
    if value is None:
        return Decimal(0)
    if isinstance(value, Decimal):
        return value
    if isinstance(value, float):
        return _USD_CONTEXT.create_decimal_from_float(value).quantize(_USD_STEP)
    return Decimal(value)


# The fields' own conversions cost about 50 µs a request; a lineage's id and its window
# start repeat from request to request, so they are converted once.
_prepared: dict = {}


def _prepare(field, value):
    try:
        return _prepared[(field.attname, value)]
    except KeyError:
        if len(_prepared) >= 10_000:
            _prepared.clear()
        found = _prepared[(field.attname, value)] = field.get_db_prep_save(value, connection)
        return found


def _params(policy, demand) -> tuple:
    # A Decimal goes as it is: psycopg sends it exactly, SQLite's adapter as its text.
    return _prepare(_LIMITS, policy.id), _prepare(_WINDOW, demand.window_start), demand.usd


def admit(*, policy, demand, hold_seconds: float, now: float):
    """Reserve `demand` against the policy (see counters.counters_admit)."""
    admission = DatabaseAdmission(policy=policy, demand=demand, hold_seconds=hold_seconds, now=now)
    if connection.vendor == "postgresql":
        sql, params = admission.postgresql_select()
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            outcome = admission.from_row(cursor.fetchone())
    else:
        with short_transaction() as cursor:
            outcome = admission.run_in(cursor)
    return admission.ticket(outcome)


class DatabaseAdmission:
    """One admission, to run on its own (`admit`) or inside another write, so that both
    take one round trip: the proxy runs it with the insert of the request's log row
    (logs.sql.insert_row's `along`).

    PostgreSQL: `postgresql_select()` is one SELECT of the `limits_admit` function, to
    run as a WITH clause, and `from_row()` reads its row. SQLite: `run_in(cursor)` runs
    the counts and the reservation in the caller's IMMEDIATE transaction. Either way the
    outcome goes to `ticket()`, which returns the Ticket or raises the refusal. A refused
    admission writes nothing but the pruning of stale rows.
    """

    __slots__ = ("policy", "demand", "hold_seconds", "now", "rates", "live")

    def __init__(self, *, policy, demand, hold_seconds: float, now: float):
        self.policy, self.demand = policy, demand
        self.hold_seconds, self.now = hold_seconds, now
        self.rates = policy.rpm_limit is not None or policy.tpm_limit is not None
        self.live = policy.max_parallel is not None or _has_budget(policy)

    def postgresql_select(self) -> tuple[str, list]:
        policy, demand, now = self.policy, self.demand, self.now
        limits_id, window, usd = _params(policy, demand)
        return (
            "SELECT * FROM limits_admit(%s::uuid, %s::float8, %s::float8, %s::timestamptz,"
            " %s::bigint, %s::numeric, %s::bigint, %s::bigint, %s::bigint, %s::bigint,"
            " %s::numeric, %s, %s, %s)",
            [
                limits_id,
                now,
                now + self.hold_seconds,
                window,
                demand.tokens,
                usd,
                policy.rpm_limit,
                policy.tpm_limit,
                policy.max_parallel,
                policy.budget_tokens,
                policy.budget_usd,
                self.rates,
                self.live,
                _has_budget(policy),
            ],
        )

    @staticmethod
    def from_row(row) -> tuple:
        reservation_id, admitted, *counted, spent_tokens, spent_usd = row
        return reservation_id, admitted, _counts(*counted), (int(spent_tokens), _usd(spent_usd))

    def run_in(self, cursor) -> tuple:
        policy, demand, now = self.policy, self.demand, self.now
        limits_id, window, usd = _params(policy, demand)
        second = math.floor(now)
        gone = second - COUNTED_SECONDS  # this second and older no longer count
        rates, live, spend = self.rates, self.live, _has_budget(policy)
        params = []
        if rates:
            params += [gone, gone, gone, gone, limits_id]
        if live:
            params += [now, now, window, now, window, now, limits_id]
        if spend:
            params += [limits_id, window]
        cursor.execute(_sqlite_count_sql(rates, live, spend), params)
        found = {row[0]: row[1:] for row in cursor.fetchall()}
        recent, recent_tokens, oldest, stale_seconds = found.get(_SECONDS, _NONE)
        in_flight, reserved_tokens, reserved_usd, stale_reservations = found.get(_RESERVED, _NONE)
        spent_tokens, spent_usd = found.get(_SPENT, _NONE)[:2]
        counts = _counts(recent, recent_tokens, oldest, in_flight, reserved_tokens, reserved_usd)
        spent = (int(spent_tokens or 0), _usd(spent_usd))
        if stale_seconds:
            cursor.execute(
                f"DELETE FROM {_table(SecondCount)} WHERE limits_id = %s AND at_second <= %s",  # noqa: S608
                [limits_id, gone],
            )
        if stale_reservations:
            cursor.execute(
                f"DELETE FROM {_table(Reservation)} WHERE limits_id = %s AND expires_at <= %s",  # noqa: S608
                [limits_id, now],
            )
        if not _fits(policy, demand, counts, spent):
            return None, False, counts, spent
        reservation_id = None
        if self.live:
            cursor.execute(
                f"INSERT INTO {_table(Reservation)} "  # noqa: S608
                "(limits_id, expires_at, window_start, tokens, usd) "
                "VALUES (%s, %s, %s, %s, %s) RETURNING id",
                [limits_id, now + self.hold_seconds, window, demand.tokens, usd],
            )
            reservation_id = cursor.fetchone()[0]
        if self.rates:
            cursor.execute(
                f"INSERT INTO {_table(SecondCount)} "  # noqa: S608
                "(limits_id, at_second, requests, tokens) VALUES (%s, %s, 1, %s) "
                "ON CONFLICT (limits_id, at_second) DO UPDATE "
                "SET requests = requests + 1, tokens = tokens + excluded.tokens",
                [limits_id, second, demand.tokens],
            )
        return reservation_id, True, counts, spent

    def ticket(self, outcome: tuple):
        """The admitted request's Ticket; or the refusal, worded from the same counts."""
        reservation_id, admitted, counts, spent = outcome
        policy, now = self.policy, self.now
        if not admitted:
            counters.check_rates(policy, counts, now)
            if _has_budget(policy):
                counters.check_budget(policy, self.demand, counts, spent, now)
            raise RateLimited("The key's limits refused this request", retry_after=1)
        return counters.Ticket(
            reservation_id=reservation_id,
            policy=policy,
            demand=self.demand,
            at_second=math.floor(now) if self.rates else None,
        )


def _has_budget(policy) -> bool:
    return policy.budget_tokens is not None or policy.budget_usd is not None


def _counts(recent, recent_tokens, oldest, in_flight, reserved_tokens, reserved_usd) -> dict:
    return {
        "recent": int(recent or 0),
        # The second a request was counted in leaves the minute COUNTED_SECONDS after
        # its start; check_rates adds the 60 of the rolling minute.
        "oldest": oldest + COUNTED_SECONDS - 60 if oldest is not None else None,
        "recent_tokens": int(recent_tokens or 0),
        "in_flight": int(in_flight or 0),
        "reserved_tokens": int(reserved_tokens or 0),
        "reserved_usd": _usd(reserved_usd),
    }


_SECONDS, _RESERVED, _SPENT = 0, 1, 2
_NONE = (None, None, None, None)


@functools.cache
def _sqlite_count_sql(rates: bool, live: bool, spend: bool) -> str:
    """Every count the policy needs, one row each, tagged: the rolling minute's seconds
    (rates), the reservations in flight (live), the window's spend (spend).

    One statement for every count, as a UNION ALL of plain aggregates: the same counts
    as three subqueries joined in one row took 59,000 more instructions per admission
    (SQLite materializes each subquery in an ephemeral table), about 16% of a limited
    request's SQL; three statements took 46,000 more (callgrind, sqlite3 alone, rpm,
    tpm, max_parallel and both budgets, 61 seconds counted). Rows that count for
    nothing any more are only reported here (stale), and deleted in the rare admissions
    that find some.
    """
    seconds, reservations, spent = _table(SecondCount), _table(Reservation), _table(Spend)
    parts = []
    if rates:
        parts.append(
            f"""SELECT {_SECONDS}, sum(CASE WHEN at_second > %s THEN requests END),
                sum(CASE WHEN at_second > %s THEN tokens END),
                min(CASE WHEN at_second > %s THEN at_second END),
                count(CASE WHEN at_second <= %s THEN 1 END)
           FROM {seconds} WHERE limits_id = %s"""  # noqa: S608 - our own table names
        )
    if live:
        parts.append(
            f"""SELECT {_RESERVED}, count(CASE WHEN expires_at > %s THEN 1 END),
                sum(CASE WHEN expires_at > %s AND window_start = %s THEN tokens END),
                sum(CASE WHEN expires_at > %s AND window_start = %s THEN usd END),
                count(CASE WHEN expires_at <= %s THEN 1 END)
           FROM {reservations} WHERE limits_id = %s"""  # noqa: S608
        )
    if spend:
        parts.append(
            f"""SELECT {_SPENT}, max(spent_tokens), max(spent_usd), NULL, NULL
           FROM {spent} WHERE limits_id = %s AND window_start = %s"""  # noqa: S608
        )
    return " UNION ALL ".join(parts)


def _fits(policy, demand, counts: dict, spent: tuple[int, Decimal]) -> bool:
    """The admission rule, as limits_admit (migration 0004) has it for PostgreSQL."""
    if policy.rpm_limit is not None and counts["recent"] >= policy.rpm_limit:
        return False
    if policy.tpm_limit is not None and counts["recent_tokens"] >= policy.tpm_limit:
        return False
    if policy.max_parallel is not None and counts["in_flight"] >= policy.max_parallel:
        return False
    if policy.budget_tokens is not None and demand.tokens > 0:
        if demand.tokens > policy.budget_tokens - spent[0] - counts["reserved_tokens"]:
            return False
    if policy.budget_usd is not None and demand.usd is not None:
        if demand.usd > policy.budget_usd - spent[1] - counts["reserved_usd"]:
            return False
    return True


def settle_statements(*, ticket, tokens: int, usd: Decimal | None) -> list[tuple[str, list]]:
    """The writes that replace the ticket's reservation with what was recorded.

    Only deletes and increments, in any order, none reading another's result: they can
    run as one statement with the log row's update (logs.sql.update_row's `also`).
    """
    policy, demand = ticket.policy, ticket.demand
    limits_id, window, _ = _params(policy, demand)
    statements = []
    if ticket.reservation_id is not None:
        statements.append(
            (f"DELETE FROM {_table(Reservation)} WHERE id = %s", [ticket.reservation_id])  # noqa: S608
        )
    if ticket.at_second is not None and tokens != demand.tokens:
        statements.append(
            (
                f"UPDATE {_table(SecondCount)} SET tokens = tokens + %s "  # noqa: S608
                "WHERE limits_id = %s AND at_second = %s",
                [tokens - demand.tokens, limits_id, ticket.at_second],
            )
        )
    if _has_budget(policy):
        statements.append(_spend_statement(limits_id, window, tokens, usd or Decimal(0)))
    return statements


def respend_statements(*, ticket, usd_before: Decimal | None, usd_after: Decimal | None) -> list:
    """The write that changes a settled request's spend from usd_before to usd_after."""
    if not _has_budget(ticket.policy) or usd_before == usd_after:
        return []
    limits_id, window, _ = _params(ticket.policy, ticket.demand)
    delta = (usd_after or Decimal(0)) - (usd_before or Decimal(0))
    return [_spend_statement(limits_id, window, 0, delta)]


def _spend_statement(limits_id, window, tokens: int, usd: Decimal) -> tuple[str, list]:
    """Add to a window's spend (its row made by the first addition)."""
    spend = _table(Spend)
    return (
        f"INSERT INTO {spend} (limits_id, window_start, spent_tokens, spent_usd) "  # noqa: S608
        "VALUES (%s, %s, %s, %s) ON CONFLICT (limits_id, window_start) DO UPDATE "
        f"SET spent_tokens = {spend}.spent_tokens + excluded.spent_tokens, "
        f"spent_usd = {spend}.spent_usd + excluded.spent_usd",
        [limits_id, window, tokens, usd],
    )


def settle(*, ticket, tokens: int, usd: Decimal | None) -> None:
    """Settle on its own (a request that ended without a log row's last write)."""
    statements = settle_statements(ticket=ticket, tokens=tokens, usd=usd)
    with short_transaction() as cursor:
        for sql, params in statements:
            cursor.execute(sql, params)
