"""Every write to limits: setting them on a key, inheriting them on rotation, and the
proxy's admission and settlement of each request."""

from __future__ import annotations

import logging
import uuid
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from limits import counters, windows
from limits.counters import Admission, Demand, Ticket
from limits.exceptions import InvalidLimits, ModelUnpriced
from limits.models import KeyLimits, KeyLimitsLink, LimitsVersion
from limits.selectors import limits_policy_for_key
from limits.validation import limits_errors
from limits.worst_case import worst_case_tokens
from prices.selectors import price_for
from upstreams.routing import upstream_model

PER_MILLION = Decimal(1_000_000)

logger = logging.getLogger(__name__)

LIMIT_FIELDS = ("rpm_limit", "tpm_limit", "max_parallel", "budget_usd", "budget_tokens")
ALL_FIELDS = (*LIMIT_FIELDS, "budget_period")


def _lineage(key) -> list:
    """Every key rotated from or to this one, itself included."""
    from keys.models import APIKey

    root = key
    seen = {root.pk}
    while root.rotated_from_id is not None and root.rotated_from_id not in seen:
        root = APIKey.objects.get(pk=root.rotated_from_id)
        seen.add(root.pk)
    ids, frontier = {root.pk}, [root.pk]
    while frontier:
        frontier = list(
            APIKey.objects.filter(rotated_from_id__in=frontier)
            .exclude(pk__in=ids)
            .values_list("pk", flat=True)
        )
        ids.update(frontier)
    return list(ids)


@transaction.atomic
def limits_set(*, key, **fields: Any) -> KeyLimits | None:
    """Set some of a key's limits (None removes one); shared by its whole lineage.

    Fields: rpm_limit, tpm_limit, max_parallel, budget_usd, budget_tokens, budget_period.
    Raises InvalidLimits for a value out of its range (limits.validation).
    """
    unknown = set(fields) - set(ALL_FIELDS)
    if unknown:
        raise TypeError(f"unknown limit fields: {sorted(unknown)}")
    errors = limits_errors(fields)
    if errors:
        raise InvalidLimits(errors)
    if not fields:
        return None
    link = KeyLimitsLink.objects.select_related("limits").filter(key_id=key.pk).first()
    if link is None and all(fields.get(name) is None for name in LIMIT_FIELDS):
        return None  # nothing to limit: a key without limits has no row
    if link is None:
        limits = KeyLimits.objects.create()
        for key_id in _lineage(key):
            KeyLimitsLink.objects.update_or_create(key_id=key_id, defaults={"limits": limits})
    else:
        limits = KeyLimits.objects.select_for_update(no_key=True).get(pk=link.limits_id)
    for name, value in fields.items():
        setattr(limits, name, value if name != "budget_period" or value else windows.MONTH)
    limits.save()
    LimitsVersion.bump()
    return limits


@transaction.atomic
def limits_inherit(*, from_key_id: uuid.UUID, to_key_id: uuid.UUID) -> None:
    """A rotated key keeps its predecessor's limits, budget, spend and reservations."""
    limits_id = (
        KeyLimitsLink.objects.filter(key_id=from_key_id).values_list("limits_id", flat=True).first()
    )
    if limits_id is None:
        return
    KeyLimitsLink.objects.update_or_create(key_id=to_key_id, defaults={"limits_id": limits_id})
    LimitsVersion.bump()


def _worst_case_usd(*, model: str, upstreams, input_bound: int, output_bound: int) -> Decimal:
    """The most the request can cost on any upstream the key may use that prices the model
    it is sent (`upstreams`: (upstream id, model sent to it, after its alias) pairs), as
    its cost will be priced (proxy.views._cost).

    Input is priced at the dearest input rate (cache writes can cost more than plain input).
    Raises ModelUnpriced when no upstream of the key has a price for the model.
    """
    worst = None
    sent_models = {sent for _, sent in upstreams} or {model}
    for upstream_id, sent in (*upstreams, *((None, sent) for sent in sorted(sent_models))):
        rates = price_for(model=sent, upstream_id=upstream_id)
        if rates is None:
            continue
        per_input = max(rates.input, rates.cache_read, rates.cache_write)
        cost = (per_input * input_bound + rates.output * output_bound) / PER_MILLION
        worst = cost if worst is None else max(worst, cost)
    if worst is None:
        aliased = sorted(sent_models - {model})
        sent_as = f" (sent upstream as {', '.join(map(repr, aliased))})" if aliased else ""
        raise ModelUnpriced(
            f"The model {model!r}{sent_as} has no price, and this key has a USD budget: "
            "only priced models can be used with it"
        )
    return worst


def limits_admission(
    *, key_id: uuid.UUID, model: str, body: bytes | None, upstream_ids=(), routes=()
) -> Admission | None:
    """What admitting a request against its key's limits would reserve (its worst case),
    not reserved yet; None when the key has no limits. Writes nothing. Raises
    ModelUnpriced for a USD budget and a model without a price. For a USD budget's
    price: `routes`, the upstreams the request may go to (each prices the model its
    alias sends), else `upstream_ids`, the upstreams the key may use.
    """
    policy = limits_policy_for_key(key_id=key_id)
    if policy is None:
        return None
    tokens, usd = 0, None
    if model and policy.needs_tokens:
        input_bound, output_bound = worst_case_tokens(
            body, default_output=settings.BUDGET_DEFAULT_MAX_TOKENS
        )
        tokens = input_bound + output_bound
        if policy.has_usd:
            if routes:
                upstreams = [(r.id, upstream_model(r, model)) for r in routes]
            else:
                upstreams = [(upstream_id, model) for upstream_id in upstream_ids]
            usd = _worst_case_usd(
                model=model,
                upstreams=upstreams,
                input_bound=input_bound,
                output_bound=output_bound,
            )
    start, resets_at = windows.window_bounds(policy.budget_period, timezone.now())
    demand = Demand(tokens=tokens, usd=usd, window_start=start, resets_at=resets_at)
    return Admission(policy=policy, demand=demand, hold_seconds=settings.PROXY_MAX_STREAM_SECONDS)


def limits_admit(
    *, key_id: uuid.UUID, model: str, body: bytes | None, upstream_ids=()
) -> Ticket | None:
    """Admit a request against its key's limits, reserving its worst case; None when the
    key has no limits. Raises RateLimited, BudgetExceeded or ModelUnpriced (nothing is
    counted then). To admit as part of the request's log row insert, in one round trip,
    use limits_admission(...).in_database() with logs.services.log_open's `along`.
    """
    admission = limits_admission(key_id=key_id, model=model, body=body, upstream_ids=upstream_ids)
    return admission.admit() if admission is not None else None


def _recorded(
    ticket: Ticket, status: int, total_tokens: int | None, cost_usd: Decimal | None
) -> tuple[int, Decimal | None]:
    """What a request spent, however it ended.

    Usage that could not be read is never taken as zero: an answer that started (2xx)
    keeps its whole reservation as spent; one that failed (no answer, or an error
    status, which providers do not bill) spends nothing.
    """
    demand = ticket.demand
    billed = 200 <= status < 400
    if total_tokens is not None:
        tokens = total_tokens
    else:
        tokens = demand.tokens if billed else 0
    usd = cost_usd
    if usd is None and demand.usd is not None:
        usd = demand.usd if billed else Decimal(0)
    return tokens, usd


def limits_settle(
    *, ticket: Ticket, status: int, total_tokens: int | None, cost_usd: Decimal | None = None
) -> None:
    """Replace a request's reservation with what it recorded, however it ended."""
    tokens, usd = _recorded(ticket, status, total_tokens, cost_usd)
    counters.counters_settle(ticket=ticket, tokens=tokens, usd=usd)


def limits_settle_statements(
    *, ticket: Ticket, status: int, total_tokens: int | None, cost_usd: Decimal | None = None
) -> list[tuple[str, list]]:
    """As limits_settle, as database writes to run in the same statement as the request's
    log row (logs.services.log_finish's `also`): one round trip for both, and a settled
    request always has its finished row. With the counters in Redis it settles there at
    once and returns no writes."""
    tokens, usd = _recorded(ticket, status, total_tokens, cost_usd)
    return counters.counters_settle_statements(ticket=ticket, tokens=tokens, usd=usd)


def limits_reprice_statements(
    *,
    ticket: Ticket,
    status: int,
    total_tokens: int | None,
    cost_before: Decimal | None,
    cost_after: Decimal | None,
) -> list[tuple[str, list]]:
    """For a request settled at cost_before whose cost is cost_after (the prices changed
    while it was priced): the writes that make its spend what it would have been, to run
    with the log row's correction (as limits_settle_statements)."""
    _, usd_before = _recorded(ticket, status, total_tokens, cost_before)
    _, usd_after = _recorded(ticket, status, total_tokens, cost_after)
    return counters.counters_respend_statements(
        ticket=ticket, usd_before=usd_before, usd_after=usd_after
    )
