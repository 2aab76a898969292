"""Reads of prices: the one the proxy and the budgets use, cached in memory and exact.

Every lookup first reads the price table's version (one primary-key read); any change
to any price bumps it in the same transaction, so the first request after a change,
on any worker of any instance sharing the database, reloads the table. The table is
small (hundreds of rows), so it is loaded whole and each (model, upstream) answer is
memoized until the next change.
"""

from __future__ import annotations

import uuid

from prices.cost import Rates
from prices.matching import PriceEntry, best_match
from prices.models import Price, PriceTableVersion

# Bounds memory against floods of made-up model names; clearing is cheap and exact.
MAX_MEMO = 20_000

# (version, entries, memo) replaced as one tuple, so no greenlet pairs a new version
# with old entries. The sentinel version never equals a real one.
_state: tuple[object, list[PriceEntry[Rates]], dict] = (object(), [], {})


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
