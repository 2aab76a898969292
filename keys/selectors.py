"""Reads of keys that other apps use."""

from __future__ import annotations

import datetime as dt
import logging
import time
import uuid

from django.core.cache import cache
from django.utils import timezone

from keys import secrets
from keys.cache import KeyGrant, grant_for_hash
from keys.exceptions import KeyExpired, KeyInvalid, KeyMissing
from keys.models import APIKey

logger = logging.getLogger(__name__)

LAST_USED_EVERY_SECONDS = 60
_last_touched: dict = {}


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
    _touch_last_used(grant, now)
    return grant


def _touch_last_used(grant: KeyGrant, now: dt.datetime) -> None:
    # At most one write a minute per key per process, and with a shared cache
    # (REDIS_URL) one a minute per key across all instances.
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
        APIKey.objects.filter(pk=grant.id).update(last_used_at=now)


class KeyAmbiguous(APIKey.MultipleObjectsReturned):
    """What was given matches several keys, or only the start of a prefix; `candidates`
    lists some of them (newest first) for the message."""

    def __init__(self, message: str, candidates: list[APIKey]):
        super().__init__(message)
        self.candidates = candidates


def key_find(*, id_or_prefix: str) -> APIKey:
    """Find one key by its UUID, its displayed prefix, the whole key itself, or its name.

    Raises APIKey.DoesNotExist, or KeyAmbiguous: a prefix or a name shared by several
    keys (a name counts only its working keys when it has any: a rotation leaves the old
    key under the same name), or the mere start of a prefix (`sk-auto-`).
    """
    if secrets.is_well_formed(id_or_prefix):
        return APIKey.objects.get(key_hash=secrets.hash_key(id_or_prefix))
    try:
        return APIKey.objects.get(pk=uuid.UUID(id_or_prefix))
    except ValueError:
        pass
    newest = APIKey.objects.order_by("-created_at")
    matches = list(newest.filter(key_prefix=id_or_prefix)[:6])
    if not matches:
        named = newest.filter(name=id_or_prefix)
        matches = list(named.usable()[:6]) or list(named[:6])
    if not matches and id_or_prefix and len(id_or_prefix) < secrets.DISPLAY_PREFIX_LENGTH:
        started = list(newest.filter(key_prefix__startswith=id_or_prefix)[:6])
        if started:
            raise KeyAmbiguous("only the start of a prefix", started)
    if not matches:
        raise APIKey.DoesNotExist("no key has that id, prefix or name")
    if len(matches) > 1:
        raise KeyAmbiguous("several keys match", matches)
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
