"""A per-process cache of key lookups that is exact, not eventually consistent.

Every lookup first reads the keyring version (one primary-key read). Any change
to any key bumps that version in the same transaction, so the first request
after a revocation, on any worker of any instance sharing the database, drops
the whole cache and reads the key again. Unknown hashes are cached too (as
None), which is safe for the same reason: creating a key bumps the version.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

from keys.models import APIKey, KeyringVersion

# Bounds memory against floods of random keys; clearing is cheap and still exact.
MAX_ENTRIES = 50_000


@dataclass(frozen=True, slots=True)
class KeyGrant:
    """What the gateway knows about a key while serving a request."""

    id: uuid.UUID
    name: str
    prefix: str
    upstream_ids: frozenset[uuid.UUID]
    is_active: bool
    expires_at: dt.datetime | None
    revoked_at: dt.datetime | None
    # Model names or `*` patterns it may ask for; empty: any.
    models: tuple[str, ...] = ()


# (version, entries) replaced as one tuple, so no thread or greenlet can ever pair a
# new version with old entries. The sentinel version never equals a real one.
_state: tuple[object, dict[str, KeyGrant | None]] = (object(), {})


def _load(key_hash: str) -> KeyGrant | None:
    row = (
        APIKey.objects.filter(key_hash=key_hash)
        .values(
            "id", "name", "key_prefix", "is_active", "expires_at", "revoked_at", "allowed_models"
        )
        .first()
    )
    if row is None:
        return None
    upstream_ids = APIKey.upstreams.through.objects.filter(apikey_id=row["id"]).values_list(
        "upstream_id", flat=True
    )
    return KeyGrant(
        id=row["id"],
        name=row["name"],
        prefix=row["key_prefix"],
        upstream_ids=frozenset(upstream_ids),
        is_active=row["is_active"],
        expires_at=row["expires_at"],
        revoked_at=row["revoked_at"],
        models=tuple(row["allowed_models"] or ()),
    )


def grant_for_hash(key_hash: str) -> KeyGrant | None:
    # Read the version before the data: a change committed in between is then
    # cached under the old version and dropped on the next request.
    global _state
    version = KeyringVersion.current()
    cached_version, entries = _state
    if version != cached_version:
        entries = {}
        _state = (version, entries)
    try:
        return entries[key_hash]
    except KeyError:
        pass
    grant = _load(key_hash)
    if len(entries) >= MAX_ENTRIES:
        entries.clear()
    entries[key_hash] = grant
    return grant
