"""Every write to API keys, and the rules they keep. Each function is one transaction:
it validates the rules, makes the change, bumps the keyring version (so every worker's
key cache sees the change on its next request), writes the action's one history entry
as `actor`, and returns the fresh saved row. The admin site, the admin API and the
commands only translate forms, JSON and arguments into these calls."""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Iterable
from typing import Any

from django.core.cache import cache
from django.db import transaction
from django.utils import timezone

from gatewaysite.history import Actor, history_action, history_added, history_changed
from keys import secrets
from keys.cache import KeyGrant
from keys.exceptions import (
    InvalidKeyData,
    InvalidModels,
    InvalidUpstreams,
    KeyInGrace,
    KeyNotRotatable,
    MissingUpstreams,
)
from keys.models import APIKey, KeyringVersion, KeyStatus
from limits.services import limits_inherit, limits_set
from upstreams.selectors import upstreams_active_by_ids
from upstreams.validation import models_errors, normalize_models

logger = logging.getLogger(__name__)

UNSET: Any = object()
LAST_USED_EVERY_SECONDS = 60
_last_touched: dict = {}
# The longest an old key may keep working after a rotation, on every surface.
MAX_GRACE_SECONDS = 30 * 24 * 3600


def key_check_expiry(expires_at: dt.datetime | None, *, current: dt.datetime | None = None) -> None:
    """An expiry being set must be in the future (one already stored may stay as it is)."""
    if expires_at is not None and expires_at != current and expires_at <= timezone.now():
        raise InvalidKeyData({"expires_at": ["Must be in the future."]})


def key_check_grace(grace_seconds: int) -> None:
    """A rotation's grace is 0 (the old key stops now) to MAX_GRACE_SECONDS (30 days)."""
    if not 0 <= grace_seconds <= MAX_GRACE_SECONDS:
        raise InvalidKeyData(
            {"grace_seconds": [f"Must be between 0 and {MAX_GRACE_SECONDS} seconds (30 days)."]}
        )


def _permitted_upstreams(upstream_ids: Iterable[Any] | None) -> list:
    ids = list(upstream_ids or [])
    if not ids:
        raise MissingUpstreams("At least one upstream id is required")
    found, bad = upstreams_active_by_ids(ids)
    if bad:
        raise InvalidUpstreams(bad)
    return found


def _allowed_models(models: list[str] | None) -> list[str]:
    models = [] if models is None else models
    errors = models_errors(models)
    if errors:
        raise InvalidModels(errors)
    return normalize_models(models)


def _new_key_fields() -> tuple[str, dict]:
    raw = secrets.generate_key()
    return raw, {
        "key_prefix": secrets.display_prefix(raw),
        "key_last4": secrets.last4(raw),
        "key_hash": secrets.hash_key(raw),
    }


@transaction.atomic
def key_create(
    *,
    actor: Actor,
    name: str,
    upstream_ids: Iterable[Any],
    description: str = "",
    expires_at: dt.datetime | None = None,
    models: list[str] | None = None,
    limits: dict[str, Any] | None = None,
) -> tuple[APIKey, str]:
    """Create a key; return it with its plaintext, which is never stored or shown again.

    models: the model names or `*` patterns it may ask for (empty or None: any).
    limits: its limits, as limits.services.limits_set takes them; a value out of range
    raises InvalidLimits and nothing is created.
    """
    key_check_expiry(expires_at)
    upstreams = _permitted_upstreams(upstream_ids)
    allowed = _allowed_models(models)
    raw, fields = _new_key_fields()
    key = APIKey.objects.create(
        name=name, description=description, expires_at=expires_at, allowed_models=allowed, **fields
    )
    key.upstreams.set(upstreams)
    limits_set(key=key, **(limits or {}))
    KeyringVersion.bump()
    history_added(key, actor=actor)
    return key, raw


@transaction.atomic
def key_update(
    *,
    key: APIKey,
    actor: Actor,
    name: str = UNSET,
    description: str = UNSET,
    upstream_ids: Iterable[Any] = UNSET,
    expires_at: dt.datetime | None = UNSET,
    models: list[str] | None = UNSET,
    limits: dict[str, Any] | None = None,
) -> APIKey:
    """Change a key's name, description, permitted upstreams, expiry, model allowlist or
    limits; return it fresh.

    Only the given fields are written, on the row as it is now (locked), so a stale
    copy in the caller's hands can never undo a revocation committed meanwhile.
    limits: the limits to change, as limits.services.limits_set takes them (None
    removes one); a value out of range raises InvalidLimits and nothing is changed.
    One history entry names every field changed, limits included.
    """
    fresh = APIKey.objects.select_for_update().get(pk=key.pk)
    if expires_at is not UNSET:
        key_check_expiry(expires_at, current=fresh.expires_at)
    changed = []
    if upstream_ids is not UNSET:
        fresh.upstreams.set(_permitted_upstreams(upstream_ids))
        changed.append("upstream_ids")
    for field, value in (("name", name), ("description", description), ("expires_at", expires_at)):
        if value is not UNSET:
            setattr(fresh, field, value)
            changed.append(field)
    if models is not UNSET:
        fresh.allowed_models = _allowed_models(models)
        changed.append("allowed_models")
    fresh.save(update_fields=[f for f in changed if f != "upstream_ids"] + ["updated_at"])
    limits = limits or {}
    limits_set(key=fresh, **limits)
    KeyringVersion.bump()
    history_changed(fresh, actor=actor, fields=[*changed, *limits])
    return APIKey.objects.get(pk=fresh.pk)


@transaction.atomic
def key_revoke(*, key: APIKey, actor: Actor) -> APIKey:
    """Stop a key at once, everywhere; return it fresh. Revoking a revoked key changes nothing."""
    now = timezone.now()
    fresh = APIKey.objects.select_for_update().get(pk=key.pk)
    fresh.is_active = False
    if fresh.revoked_at is None or fresh.revoked_at > now:
        fresh.revoked_at = now
    fresh.save(update_fields=["is_active", "revoked_at", "updated_at"])
    KeyringVersion.bump()
    history_action(fresh, actor=actor, action="Revoked.")
    return fresh


@transaction.atomic
def key_rotate(*, key: APIKey, actor: Actor, grace_seconds: int = 0) -> tuple[APIKey, str]:
    """Issue a new key with the same permissions and limits; the old one stops now or after
    the grace. Return the new key and its plaintext (shown once); `key` is left as it was
    read, so refresh it to see its new end.

    Only a key in status `active` rotates: one in `grace` was rotated already (its
    successor is the one to rotate), a revoked or expired one does not work."""
    key_check_grace(grace_seconds)
    old = APIKey.objects.select_for_update().get(pk=key.pk)
    now = timezone.now()
    status = old.status(at=now)
    if status == KeyStatus.GRACE:
        successor = old.rotated_to.order_by("-created_at").first()
        raise KeyInGrace(old.key_prefix, successor.key_prefix if successor else None)
    if status != KeyStatus.ACTIVE:
        raise KeyNotRotatable(
            f"API key {old.key_prefix}… ({old.name}) is {status}; only a working key can be rotated."
        )
    raw, fields = _new_key_fields()
    new_key = APIKey.objects.create(
        name=old.name,
        description=old.description,
        expires_at=old.expires_at,
        allowed_models=old.allowed_models,
        rotated_from=old,
        **fields,
    )
    new_key.upstreams.set(old.upstreams.all())
    limits_inherit(from_key_id=old.pk, to_key_id=new_key.pk)
    if grace_seconds:
        old.revoked_at = now + dt.timedelta(seconds=grace_seconds)
        ends = f"works {grace_seconds} s more"
    else:
        old.is_active = False
        old.revoked_at = now
        ends = "stops now"
    old.save(update_fields=["is_active", "revoked_at", "updated_at"])
    KeyringVersion.bump()
    history_action(
        old, actor=actor, action=f"Rotated; replaced by {new_key.key_prefix}…; the old key {ends}."
    )
    return new_key, raw


def key_touch(*, grant: KeyGrant, now: dt.datetime | None = None) -> None:
    """Note that a key was just used (last_used_at): a step of the proxy, not of reading a key.

    At most one write a minute per key per process, and with a shared cache (REDIS_URL)
    one a minute per key across all instances; no history entry (it is not a change).
    """
    mono = time.monotonic()
    if mono - _last_touched.get(grant.id, -LAST_USED_EVERY_SECONDS) < LAST_USED_EVERY_SECONDS:
        return
    _last_touched[grant.id] = mono
    try:
        first = cache.add(f"keys:last-used:{grant.id}", 1, LAST_USED_EVERY_SECONDS)
    except Exception:  # Redis away: a throttle must not turn every request into a 500
        logger.warning("the shared cache did not answer; last_used_at not updated")
        return
    if first:
        APIKey.objects.filter(pk=grant.id).update(last_used_at=now or timezone.now())
