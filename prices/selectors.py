"""Reads of prices: the one the proxy and the budgets use, cached in memory and exact.

Every lookup first reads the price table's version (one primary-key read); any change
to any price bumps it in the same transaction, so the first request after a change,
on any worker of any instance sharing the database, reloads the table. The proxy's
pricing of a finished request reads no version of its own: it prices from this
process's copy (price_quote) and its log row's write checks that copy's version in the
same statement (prices_version_sql), pricing again with price_for when it changed. The table is
small (hundreds of rows), so it is loaded whole and each (model, upstream) answer is
memoized until the next change.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from prices.cost import Rates
from prices.matching import PriceEntry, best_match
from prices.models import Price, PriceTableVersion

# Bounds memory against floods of made-up model names; clearing is cheap and exact.
MAX_MEMO = 20_000

# (version, entries, memo) replaced as one tuple, so no greenlet pairs a new version
# with old entries. The sentinel version never equals a real one.
_NEVER_LOADED = object()
_state: tuple[object, list[PriceEntry[Rates]], dict] = (_NEVER_LOADED, [], {})


def _load() -> list[PriceEntry[Rates]]:
    return [
        PriceEntry(
            model=row["model"],
            upstream_id=row["upstream_id"],
            value=Rates.resolve(
                input=row["input"],
                output=row["output"],
                cache_read=row["cache_read"],
                cache_write=row["cache_write"],
            ),
        )
        for row in Price.objects.values(
            "model", "upstream_id", "input", "output", "cache_read", "cache_write"
        )
    ]


@dataclass(frozen=True, slots=True)
class PriceQuote:
    """Rates as this process last loaded them, and the price table's version they are of."""

    rates: Rates | None
    version: object


def price_for(*, model: str, upstream_id: uuid.UUID | None) -> Rates | None:
    """The rates of the most specific price for this model on this upstream, or None."""
    global _state
    # The version before the data: a change committed in between is cached under
    # the old version and dropped on the next lookup.
    version = PriceTableVersion.current()
    cached_version, entries, memo = _state
    if version != cached_version:
        entries, memo = _load(), {}
        _state = (version, entries, memo)
    return _lookup(entries, memo, model, upstream_id)


def price_quote(*, model: str, upstream_id: uuid.UUID | None) -> PriceQuote:
    """As price_for, from this process's copy without reading the version: no round trip.

    Exact only with a check: the write that records the cost reads the version in the
    same statement (prices_version_sql), and a caller whose quote's version differs
    prices again with price_for. A process that never loaded the table loads it here.
    """
    cached_version, entries, memo = _state
    if cached_version is _NEVER_LOADED:
        price_for(model=model, upstream_id=upstream_id)
        cached_version, entries, memo = _state
    return PriceQuote(_lookup(entries, memo, model, upstream_id), cached_version)


def prices_version_sql() -> str:
    """A SELECT of the price table's version, to run inside the write that records a
    cost priced by price_quote; equal to the quote's version when the prices it used are
    still the ones in force."""
    return PriceTableVersion.current_sql()


def _lookup(entries, memo: dict, model: str, upstream_id: uuid.UUID | None) -> Rates | None:
    key = (model, upstream_id)
    try:
        return memo[key]
    except KeyError:
        pass
    found = best_match(entries, model=model, upstream_id=upstream_id)
    rates = found.value if found is not None else None
    if len(memo) >= MAX_MEMO:
        memo.clear()
    memo[key] = rates
    return rates


def prices_list():
    """Every price, for the admin API's list (filters and pages applied by the caller)."""
    return Price.objects.select_related("upstream")
