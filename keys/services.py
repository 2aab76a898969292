"""Every write to API keys. Each function is one transaction and bumps the keyring
version in it, so every worker's key cache sees the change on its next request."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

from django.db import transaction
from django.utils import timezone

from gatewaysite.instances import mirror_row
from keys import secrets
from keys.exceptions import InvalidModels, InvalidUpstreams, KeyNotRotatable, MissingUpstreams
from keys.models import APIKey, KeyringVersion
from limits.services import limits_inherit
from upstreams.selectors import upstreams_active_by_ids
from upstreams.validation import models_errors, normalize_models

UNSET: Any = object()
# The longest an old key may keep working after a rotation, on every surface.
MAX_GRACE_SECONDS = 30 * 24 * 3600


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
    name: str,
    upstream_ids: Iterable[Any],
    description: str = "",
    expires_at: dt.datetime | None = None,
    models: list[str] | None = None,
) -> tuple[APIKey, str]:
    """Create a key; return it with its plaintext, which is never stored or shown again.

    models: the model names or `*` patterns it may ask for (empty or None: any).
    """
    upstreams = _permitted_upstreams(upstream_ids)
    allowed = _allowed_models(models)
    raw, fields = _new_key_fields()
    key = APIKey.objects.create(
        name=name, description=description, expires_at=expires_at, allowed_models=allowed, **fields
    )
    key.upstreams.set(upstreams)
    KeyringVersion.bump()
    return key, raw


@transaction.atomic
def key_update(
    *,
    key: APIKey,
    name: str = UNSET,
    description: str = UNSET,
    upstream_ids: Iterable[Any] = UNSET,
    expires_at: dt.datetime | None = UNSET,
    models: list[str] | None = UNSET,
) -> APIKey:
    """Change a key's name, description, permitted upstreams, expiry or model allowlist.

    Only the given fields are written, on the row as it is now (locked), so a stale
    copy in the caller's hands can never undo a revocation committed meanwhile.
    """
    fresh = APIKey.objects.select_for_update().get(pk=key.pk)
    if upstream_ids is not UNSET:
        fresh.upstreams.set(_permitted_upstreams(upstream_ids))
    changed = []
    for field, value in (("name", name), ("description", description), ("expires_at", expires_at)):
        if value is not UNSET:
            setattr(fresh, field, value)
            changed.append(field)
    if models is not UNSET:
        fresh.allowed_models = _allowed_models(models)
        changed.append("allowed_models")
    fresh.save(update_fields=[*changed, "updated_at"])
    KeyringVersion.bump()
    mirror_row(key, fresh)
    return key


@transaction.atomic
def key_revoke(*, key: APIKey) -> APIKey:
    """Stop a key at once, everywhere. Revoking a revoked key changes nothing."""
    now = timezone.now()
    fresh = APIKey.objects.select_for_update().get(pk=key.pk)
    fresh.is_active = False
    if fresh.revoked_at is None or fresh.revoked_at > now:
        fresh.revoked_at = now
    fresh.save(update_fields=["is_active", "revoked_at", "updated_at"])
    KeyringVersion.bump()
    mirror_row(key, fresh)
    return key


@transaction.atomic
def key_rotate(*, key: APIKey, grace_seconds: int | None = None) -> tuple[APIKey, str]:
    """Issue a new key with the same permissions; the old one stops now or after the grace."""
    key = APIKey.objects.select_for_update().get(pk=key.pk)
    now = timezone.now()
    if not APIKey.objects.usable(at=now).filter(pk=key.pk).exists():
        raise KeyNotRotatable("Only an active, unexpired key can be rotated")
    raw, fields = _new_key_fields()
    new_key = APIKey.objects.create(
        name=key.name,
        description=key.description,
        expires_at=key.expires_at,
        allowed_models=key.allowed_models,
        rotated_from=key,
        **fields,
    )
    new_key.upstreams.set(key.upstreams.all())
    limits_inherit(from_key_id=key.pk, to_key_id=new_key.pk)
    if grace_seconds:
        ends = now + dt.timedelta(seconds=grace_seconds)
        if key.revoked_at is None or key.revoked_at > ends:
            key.revoked_at = ends
    else:
        key.is_active = False
        key.revoked_at = now
    key.save(update_fields=["is_active", "revoked_at", "updated_at"])
    KeyringVersion.bump()
    return new_key, raw
