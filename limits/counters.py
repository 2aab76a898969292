"""Where the counters live: the one place that chooses between the database and Redis.

By default the database (SQLite or PostgreSQL) holds them, so every worker of every
instance that shares it sees the same counts (limits/db_store.py: admission is one
round trip on PostgreSQL, one short IMMEDIATE transaction on SQLite, each under the
lineage's lock). With REDIS_URL they live in Redis instead, where one Lua script counts
and reserves (a script runs alone; limits/redis_store.py). Either way check and
reservation are one atomic step: N workers never admit N times.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings
from django.db.models import F, Sum, Value

from limits import db_store, redis_store, windows
from limits.exceptions import BudgetExceeded, RateLimited
from limits.models import Reservation, Spend
from limits.selectors import Policy


@dataclass(frozen=True)
class Demand:
    """What one request asks of its key's limits: its worst case."""

    tokens: int
    usd: Decimal | None
    window_start: dt.datetime
    resets_at: dt.datetime | None


@dataclass
class Ticket:
    """An admitted request's reservation, until it is settled."""

    reservation_id: int | None  # None: nothing in flight to release (no parallel, no budget)
    policy: Policy
    demand: Demand
    at_second: int | None = None  # the second it was counted in (database, rpm or tpm)


@dataclass(frozen=True)
class Admission:
    """A request's claim on its key's limits, not made yet."""

    policy: Policy
    demand: Demand
    hold_seconds: float  # the longest the reservation counts as in flight

    def admit(self) -> Ticket:
        """Make the claim now, on its own (counters_admit)."""
        return counters_admit(
            policy=self.policy, demand=self.demand, hold_seconds=self.hold_seconds
        )

    def in_database(self) -> db_store.DatabaseAdmission | None:
        """The claim as part of another database write, one round trip for both (the
        proxy's log row insert); None when the counters live in Redis."""
        if settings.REDIS_URL:
            return None
        return db_store.DatabaseAdmission(
            policy=self.policy, demand=self.demand, hold_seconds=self.hold_seconds, now=time.time()
        )


def counters_store_ping() -> bool | None:
    """Whether a separate counter store (Redis) answers; None when the counters live in
    the database (which the caller checks on its own)."""
    if not settings.REDIS_URL:
        return None
    return redis_store.ping()


def counters_admit(*, policy: Policy, demand: Demand, hold_seconds: float) -> Ticket:
    """Reserve `demand` against the policy, or raise RateLimited / BudgetExceeded.

    The reservation counts as in flight for at most `hold_seconds` (the longest a
    request can live), so one whose worker died is released by then.
    """
    if settings.REDIS_URL:
        return redis_store.admit(policy=policy, demand=demand, hold_seconds=hold_seconds)
    return db_store.admit(policy=policy, demand=demand, hold_seconds=hold_seconds, now=time.time())


def check_rates(policy: Policy, counts: dict, now: float) -> None:
    """Raise RateLimited when the counts (of the rolling minute, in flight) reach a limit."""
    if policy.rpm_limit is not None and counts["recent"] >= policy.rpm_limit:
        raise RateLimited(
            f"Rate limit reached: at most {policy.rpm_limit} requests per minute for this key",
            retry_after=windows.seconds_until(counts["oldest"] + windows.ROLLING_SECONDS, now),
        )
    if policy.tpm_limit is not None and (counts["recent_tokens"] or 0) >= policy.tpm_limit:
        raise RateLimited(
            f"Token rate limit reached: at most {policy.tpm_limit} tokens per minute for this key",
            retry_after=windows.seconds_until(counts["oldest"] + windows.ROLLING_SECONDS, now),
        )
    if policy.max_parallel is not None and counts["in_flight"] >= policy.max_parallel:
        raise RateLimited(
            f"Too many requests in flight: at most {policy.max_parallel} at once for this key",
            retry_after=1,
        )


def check_budget(
    policy: Policy, demand: Demand, counts: dict, spent: tuple[int, Decimal], now: float
) -> None:
    """Raise BudgetExceeded when the demand does not fit in budget - spent - reserved."""
    retry = windows.seconds_until(demand.resets_at, now) if demand.resets_at else None
    period = "" if demand.resets_at is None else f" this {policy.budget_period}"
    if policy.budget_tokens is not None and demand.tokens:
        if demand.tokens > policy.budget_tokens:
            raise BudgetExceeded(
                f"This request could use up to {demand.tokens} tokens, more than the key's "
                f"whole budget of {policy.budget_tokens}; lower its output limit "
                "(max_tokens) or its input"
            )
        left = policy.budget_tokens - spent[0] - (counts["reserved_tokens"] or 0)
        if demand.tokens > left:
            raise BudgetExceeded(
                f"The key's token budget{period} cannot cover this request's worst case "
                f"({demand.tokens} tokens; {max(0, left)} left)",
                retry_after=retry,
            )
    if policy.budget_usd is not None and demand.usd is not None:
        if demand.usd > policy.budget_usd:
            raise BudgetExceeded(
                f"This request could cost up to ${demand.usd:.6f}, more than the key's whole "
                f"budget of ${policy.budget_usd}; lower its output limit (max_tokens)"
            )
        left_usd = policy.budget_usd - spent[1] - (counts["reserved_usd"] or Decimal(0))
        if demand.usd > left_usd:
            raise BudgetExceeded(
                f"The key's budget{period} cannot cover this request's worst case "
                f"(${demand.usd:.6f}; ${max(Decimal(0), left_usd):.6f} left)",
                retry_after=retry,
            )


def counters_settle(*, ticket: Ticket, tokens: int, usd: Decimal | None) -> None:
    """Replace the ticket's reservation with what the request recorded."""
    if settings.REDIS_URL:
        redis_store.settle(ticket=ticket, tokens=tokens, usd=usd)
        return
    db_store.settle(ticket=ticket, tokens=tokens, usd=usd)


def counters_settle_statements(
    *, ticket: Ticket, tokens: int, usd: Decimal | None
) -> list[tuple[str, list]]:
    """The database writes that settle the ticket, to run with another write in one
    round trip; with the counters in Redis, settles there now and returns none."""
    if settings.REDIS_URL:
        redis_store.settle(ticket=ticket, tokens=tokens, usd=usd)
        return []
    return db_store.settle_statements(ticket=ticket, tokens=tokens, usd=usd)


def counters_respend_statements(
    *, ticket: Ticket, usd_before: Decimal | None, usd_after: Decimal | None
) -> list[tuple[str, list]]:
    """The database writes that change a settled ticket's spend from usd_before to
    usd_after, to run with another write; with the counters in Redis, changes it there
    now and returns none."""
    if settings.REDIS_URL:
        redis_store.respend(ticket=ticket, usd_before=usd_before, usd_after=usd_after)
        return []
    return db_store.respend_statements(ticket=ticket, usd_before=usd_before, usd_after=usd_after)


def counters_window_totals(*, windows_of: dict) -> dict:
    """{(limits_id, window_start): (spent_tokens, spent_usd, reserved_tokens, reserved_usd)}
    for each lineage's window in `windows_of` ({limits_id: window_start}).

    In the database, one statement (one snapshot): a settlement between two reads
    would show its request in neither the spend nor the reservations, or in both."""
    if not windows_of:
        return {}
    if settings.REDIS_URL:
        return redis_store.window_totals(windows_of=windows_of)
    totals = {key: [0, Decimal(0), 0, Decimal(0)] for key in windows_of.items()}
    ids, starts = set(windows_of), set(windows_of.values())
    columns = ("limits_id", "window_start", "part", "tokens", "usd")
    spent = (
        Spend.objects.filter(limits_id__in=ids, window_start__in=starts)
        .annotate(part=Value(_SPENT), tokens=F("spent_tokens"), usd=F("spent_usd"))
        .values_list(*columns)
    )
    in_flight = (
        Reservation.objects.filter(
            limits_id__in=ids, window_start__in=starts, expires_at__gt=time.time()
        )
        .values("limits_id", "window_start")
        .annotate(part=Value(_RESERVED), tokens=Sum("tokens"), usd=Sum("usd"))
        .values_list(*columns)
    )
    for limits_id, window_start, part, tokens, usd in spent.union(in_flight, all=True):
        key = (limits_id, window_start)
        if key in totals:
            totals[key][part] = tokens or 0
            totals[key][part + 1] = usd or Decimal(0)
    return {key: tuple(value) for key, value in totals.items()}


# Where each part of counters_window_totals goes in a window's totals.
_SPENT, _RESERVED = 0, 2
