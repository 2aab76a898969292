"""Reads of keys that other apps use."""

from __future__ import annotations

import datetime as dt
import logging
import uuid

from django.utils import timezone

from keys import secrets
from keys.cache import KeyGrant, grant_for_hash
from keys.exceptions import KeyExpired, KeyInvalid, KeyMissing
from keys.models import APIKey

logger = logging.getLogger(__name__)


def key_authenticate(*, raw_key: str | None, now: dt.datetime | None = None) -> KeyGrant:
    """Return the grant for a presented key, or raise KeyMissing / KeyInvalid / KeyExpired.

    Every malformed variant (wrong prefix, wrong length, non-ASCII, a stored hash)
    is simply KeyInvalid: the caller learns nothing about why.
    """
    if not raw_key:
        raise KeyMissing("No API key provided")
    if not secrets.is_well_formed(raw_key):
        raise KeyInvalid("Invalid API key")
    grant = grant_for_hash(secrets.hash_key(raw_key))
    now = now or timezone.now()
    if (
        grant is None
        or not grant.is_active
        or (grant.revoked_at is not None and grant.revoked_at <= now)
    ):
        raise KeyInvalid("Invalid API key")
    if grant.expires_at is not None and grant.expires_at <= now:
        raise KeyExpired("API key has expired")
    return grant


def key_find(*, id_or_prefix: str) -> APIKey:
    """Find one key by its UUID, its displayed prefix, or the whole key itself.

    Raises APIKey.DoesNotExist, or APIKey.MultipleObjectsReturned for an ambiguous prefix.
    """
    if secrets.is_well_formed(id_or_prefix):
        return APIKey.objects.get(key_hash=secrets.hash_key(id_or_prefix))
    try:
        return APIKey.objects.get(pk=uuid.UUID(id_or_prefix))
    except (ValueError, APIKey.DoesNotExist):
        pass
    matches = list(APIKey.objects.filter(key_prefix=id_or_prefix)[:2])
    if not matches:
        raise APIKey.DoesNotExist("no key has that id or prefix")
    if len(matches) > 1:
        raise APIKey.MultipleObjectsReturned("that prefix matches several keys; use the id")
    return matches[0]


def key_lineages() -> dict[uuid.UUID, uuid.UUID]:
    """Every key's lineage: the id of the first key of its rotation chain (itself if never rotated).

    A rotated key and the keys that replaced it are one key to whoever holds it, so
    usage is also reported per lineage.
    """
    parent = dict(APIKey.objects.values_list("id", "rotated_from_id"))
    roots: dict[uuid.UUID, uuid.UUID] = {}
    for key_id in parent:
        chain = [key_id]
        node = key_id
        while (up := parent.get(node)) is not None and up not in chain and up not in roots:
            chain.append(up)
            node = up
        root = roots[up] if up in roots else node
        for member in chain:
            roots[member] = root
    return roots
