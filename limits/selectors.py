"""Reads of limits that other apps use: a key's policy (cached exactly) and its spend."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from decimal import Decimal

from django.utils import timezone

from limits import windows
from limits.models import KeyLimits, KeyLimitsLink, LimitsVersion

MAX_ENTRIES = 50_000


@dataclass(frozen=True, slots=True)
class Policy:
    """A key's limits while serving a request; `id` is its lineage's KeyLimits row."""

    id: uuid.UUID
    rpm_limit: int | None
    tpm_limit: int | None
    max_parallel: int | None
    budget_usd: Decimal | None
    budget_tokens: int | None
    budget_period: str

    @property
    def needs_tokens(self) -> bool:
        """Whether admission must estimate the request's worst-case tokens."""
        return self.tpm_limit is not None or self.budget_tokens is not None or self.has_usd

    @property
    def has_usd(self) -> bool:
        return self.budget_usd is not None

    @property
    def is_empty(self) -> bool:
        return (
            self.rpm_limit is None
            and self.tpm_limit is None
            and self.max_parallel is None
            and self.budget_usd is None
            and self.budget_tokens is None
        )


_FIELDS = ("rpm_limit", "tpm_limit", "max_parallel", "budget_usd", "budget_tokens", "budget_period")

# (version, entries) swapped as one tuple, as in keys.cache.
_state: tuple[object, dict[uuid.UUID, Policy | None]] = (object(), {})


def _policy(row: KeyLimits | dict) -> Policy:
    get = row.get if isinstance(row, dict) else lambda f: getattr(row, f)
    return Policy(id=get("id"), **{f: get(f) for f in _FIELDS})


def limits_policy_for_key(*, key_id: uuid.UUID) -> Policy | None:
    """The key's limits, or None when it has none. Exact: one version read per call."""
    global _state
    version = LimitsVersion.current()
    cached_version, entries = _state
    if version != cached_version:
        entries = {}
        _state = (version, entries)
    try:
        return entries[key_id]
    except KeyError:
        pass
    row = KeyLimits.objects.filter(links__key_id=key_id).values("id", *_FIELDS).first()
    policy = _policy(row) if row is not None else None
    if policy is not None and policy.is_empty:
        policy = None
    if len(entries) >= MAX_ENTRIES:
        entries.clear()
    entries[key_id] = policy
    return policy


@dataclass(frozen=True)
class KeyLimitsView:
    """What the admin API and the admin site show of a key's limits and current spend."""

    rpm_limit: int | None = None
    tpm_limit: int | None = None
    max_parallel: int | None = None
    budget_usd: Decimal | None = None
    budget_tokens: int | None = None
    budget_period: str = windows.MONTH
    spend: dict | None = None


def _spend(limits: KeyLimits | None, now: dt.datetime, totals: dict) -> dict:
    period = limits.budget_period if limits else windows.MONTH
    start = windows.window_start(period, now)
    end = windows.window_end(period, now)
    has_usd = limits is not None and limits.budget_usd is not None
    has_tokens = limits is not None and limits.budget_tokens is not None
    spent_tokens, spent_usd, reserved_tokens, reserved_usd = totals.get(
        (limits and limits.pk, start), (0, Decimal(0), 0, Decimal(0))
    )
    return {
        "period": period,
        "window_start": start,
        "resets_at": end,
        "spent_usd": spent_usd if has_usd else None,
        "spent_tokens": spent_tokens if has_tokens else None,
        "reserved_usd": reserved_usd if has_usd else None,
        "reserved_tokens": reserved_tokens if has_tokens else None,
        "remaining_usd": max(Decimal(0), limits.budget_usd - spent_usd - reserved_usd)
        if has_usd
        else None,
        "remaining_tokens": max(0, limits.budget_tokens - spent_tokens - reserved_tokens)
        if has_tokens
        else None,
    }


def _limits_of(key) -> KeyLimits | None:
    try:
        return key.limits_link.limits
    except KeyLimitsLink.DoesNotExist:
        return None


def limits_view_for_keys(*, keys, now: dt.datetime | None = None) -> dict:
    """Limits and current spend of each key, by key id (a key with none gets the empty
    view). No query for keys fetched with select_related("limits_link__limits") that have
    no limits; one in all for a page of keys that have some."""
    from limits.counters import counters_window_totals

    now = now or timezone.now()
    by_key = {key.pk: _limits_of(key) for key in keys}
    windows_of = {
        limits.pk: windows.window_start(limits.budget_period, now)
        for limits in by_key.values()
        if limits is not None
    }
    totals = counters_window_totals(windows_of=windows_of)
    views = {}
    for key_id, limits in by_key.items():
        fields = {f: getattr(limits, f) for f in _FIELDS} if limits is not None else {}
        views[key_id] = KeyLimitsView(**fields, spend=_spend(limits, now, totals))
    return views
