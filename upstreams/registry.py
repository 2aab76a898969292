"""A per-process snapshot of every upstream, exact in the same way as the key cache.

Each request reads the registry version (one primary-key read); any change to
any upstream bumps it in the same transaction, so a deactivated upstream or a
new secret is in force on every worker from the next request on. Secrets are
decrypted once per snapshot, on first use, not once per request.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from upstreams import crypto
from upstreams.models import RegistryVersion, Upstream


@dataclass(slots=True)
class UpstreamRoute:
    id: uuid.UUID
    name: str
    provider: str
    base_url: str
    timeout: float | None
    is_active: bool
    is_default: bool
    _secret_encrypted: str = field(repr=False)
    _secret: str | None = field(default=None, repr=False)
    inject_stream_usage: bool = True
    models: tuple[str, ...] = ()
    aliases: dict[str, str] = field(default_factory=dict)
    priority: int = 0
    weight: int = 1

    @property
    def secret(self) -> str:
        """The plaintext secret; raises crypto.SecretUnreadable if no key decrypts it."""
        if self._secret is None:
            self._secret = crypto.decrypt(self._secret_encrypted)
        return self._secret


@dataclass(frozen=True, slots=True)
class Snapshot:
    by_id: dict[uuid.UUID, UpstreamRoute]
    by_name: dict[str, UpstreamRoute]
    # Creation order, oldest first: "the first upstream the key may use".
    ordered: tuple[UpstreamRoute, ...]


# (version, snapshot) replaced as one tuple: never a new version with an old snapshot.
_state: tuple[object, Snapshot | None] = (object(), None)


def _load() -> Snapshot:
    rows = Upstream.objects.order_by("created_at", "id").values(
        "id",
        "name",
        "provider",
        "base_url",
        "timeout",
        "is_active",
        "is_default",
        "secret_encrypted",
        "inject_stream_usage",
        "models",
        "aliases",
        "priority",
        "weight",
    )
    routes = tuple(
        UpstreamRoute(
            id=r["id"],
            name=r["name"],
            provider=r["provider"],
            base_url=r["base_url"],
            timeout=r["timeout"],
            is_active=r["is_active"],
            is_default=r["is_default"],
            _secret_encrypted=r["secret_encrypted"],
            inject_stream_usage=r["inject_stream_usage"],
            models=tuple(r["models"] or ()),
            aliases=dict(r["aliases"] or {}),
            priority=r["priority"],
            weight=r["weight"],
        )
        for r in rows
    )
    return Snapshot(
        by_id={r.id: r for r in routes}, by_name={r.name: r for r in routes}, ordered=routes
    )


def snapshot() -> Snapshot:
    global _state
    version = RegistryVersion.current()  # before the data; see keys.cache
    cached_version, snap = _state
    if version != cached_version or snap is None:
        snap = _load()
        _state = (version, snap)
    return snap
