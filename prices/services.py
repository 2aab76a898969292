"""Every write to prices. Each function is one transaction: it validates the rules, makes
the change, bumps the price table's version (so every worker prices the next request
that finishes by the new table), writes the action's history as `actor`, and returns
the fresh saved row. Rows already written keep the cost they were given: nothing here
touches the log. The admin site, the admin API and the command only translate."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.contrib.admin.models import ADDITION, CHANGE
from django.db import transaction

from gatewaysite.history import (
    ADDED,
    Actor,
    changed_message,
    history_added,
    history_changed,
    history_deleted,
    history_record_many,
)
from prices.exceptions import InvalidPriceData, PriceExists
from prices.importing import PriceRow, parse_price_file
from prices.models import Price, PriceTableVersion
from upstreams.models import Upstream

UNSET: Any = object()
RATES = ("input", "output", "cache_read", "cache_write")


def _check_upstream(upstream_id: uuid.UUID | None) -> None:
    if upstream_id is not None and not Upstream.objects.filter(pk=upstream_id).exists():
        raise InvalidPriceData({"upstream_id": ["No upstream has this id."]})


def _check_unique(model: str, upstream_id: uuid.UUID | None, *, exclude=None) -> None:
    clash = Price.objects.filter(model=model, upstream_id=upstream_id)
    if exclude is not None:
        clash = clash.exclude(pk=exclude)
    if clash.exists():
        raise PriceExists(
            {"model": ["A price for this model on this upstream (or on any) exists already."]}
        )


@transaction.atomic
def price_create(
    *,
    actor: Actor,
    model: str,
    input: Decimal,  # noqa: A002 - the contract's field name
    output: Decimal,
    upstream_id: uuid.UUID | None = None,
    cache_read: Decimal | None = None,
    cache_write: Decimal | None = None,
) -> Price:
    """Add a price; requests that finish from now on are priced with it."""
    _check_upstream(upstream_id)
    _check_unique(model, upstream_id)
    price = Price.objects.create(
        model=model,
        upstream_id=upstream_id,
        input=input,
        output=output,
        cache_read=cache_read,
        cache_write=cache_write,
    )
    PriceTableVersion.bump()
    history_added(price, actor=actor)
    return Price.objects.get(pk=price.pk)


@transaction.atomic
def price_update(*, price: Price, actor: Actor, **changes: Any) -> Price:
    """Change some of a price's fields (model, upstream_id, input, output, cache_read, cache_write).

    The history entry names the fields whose value changed; a change that changes
    nothing writes nothing."""
    fresh = Price.objects.select_for_update().get(pk=price.pk)
    unknown = set(changes) - {"model", "upstream_id", *RATES}
    if unknown:
        raise TypeError(f"price_update() got unexpected fields {sorted(unknown)}")
    if "upstream_id" in changes:
        _check_upstream(changes["upstream_id"])
    changed = [name for name, value in changes.items() if getattr(fresh, name) != value]
    if not changed:
        return Price.objects.get(pk=fresh.pk)
    for name in changed:
        setattr(fresh, name, changes[name])
    _check_unique(fresh.model, fresh.upstream_id, exclude=fresh.pk)
    fresh.save()
    PriceTableVersion.bump()
    history_changed(fresh, actor=actor, fields=changed)
    return Price.objects.get(pk=fresh.pk)


@transaction.atomic
def price_delete(*, price: Price, actor: Actor) -> None:
    """Remove a price; rows already priced with it keep their cost."""
    fresh = Price.objects.select_for_update().filter(pk=price.pk).first()
    if fresh is None:
        return  # deleted meanwhile: nothing to do, nothing to record
    history_deleted(fresh, actor=actor)
    fresh.delete()
    PriceTableVersion.bump()


@dataclass
class ImportResult:
    added: int = 0
    changed: int = 0
    skipped: int = 0
    skipped_reasons: list[str] = field(default_factory=list)


def prices_import(*, actor: Actor, text: str, dry_run: bool = False) -> ImportResult:
    """Import prices from our JSON list or LiteLLM's model_prices_and_context_window.json.

    All or nothing. A price that exists for the same model and upstream is changed
    when its rates differ, else left alone; entries without token prices are skipped.
    Each price added or changed has its own history entry, as if edited one by one.
    """
    parsed = parse_price_file(text)
    upstream_ids = {row.upstream_id for row in parsed.rows if row.upstream_id is not None}
    known = set(Upstream.objects.filter(pk__in=upstream_ids).values_list("pk", flat=True))
    missing = sorted(str(u) for u in upstream_ids - known)
    if missing:
        raise InvalidPriceData({"upstream_id": [f"No upstream has the id {m}." for m in missing]})
    result = ImportResult(skipped=len(parsed.skipped), skipped_reasons=list(parsed.skipped))
    history: list[tuple[Price, int, list]] = []
    with transaction.atomic():
        existing = {
            (p.model, p.upstream_id): p
            for p in Price.objects.select_for_update().filter(
                model__in=[row.model for row in parsed.rows]
            )
        }
        for row in parsed.rows:
            current = existing.get((row.model, row.upstream_id))
            if current is None:
                result.added += 1
                if not dry_run:
                    price = Price.objects.create(
                        model=row.model, upstream_id=row.upstream_id, **row.rates()
                    )
                    existing[(row.model, row.upstream_id)] = price
                    history.append((price, ADDITION, ADDED))
            elif changed := _differing(current, row):
                result.changed += 1
                if not dry_run:
                    for name, value in row.rates().items():
                        setattr(current, name, value)
                    current.save()
                    history.append((current, CHANGE, changed_message(changed)))
            else:
                result.skipped += 1
        if not dry_run and history:
            PriceTableVersion.bump()
            history_record_many(history, actor=actor)
    return result


def _differing(price: Price, row: PriceRow) -> list[str]:
    return [name for name, value in row.rates().items() if getattr(price, name) != value]
