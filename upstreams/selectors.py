"""Reads of upstreams that other apps use."""

from __future__ import annotations

import uuid
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from typing import Any

from django.db import models

from upstreams import routing
from upstreams.crypto import SecretUnreadable
from upstreams.exceptions import (
    ModelNotAllowed,
    ModelNotFound,
    UnknownUpstream,
    UpstreamForbidden,
    UpstreamUnavailable,
)
from upstreams.health import cooling_ids
from upstreams.models import Upstream
from upstreams.registry import UpstreamRoute, snapshot


def upstreams_active_by_ids(ids: Iterable[Any]) -> tuple[list[Upstream], list[str]]:
    """Split ids into the active upstreams they name and the ids that name none (as given).

    An entry that is not a UUID is taken as an upstream's name, so an operator can write
    `["openai"]` wherever ids are asked for.
    """
    wanted: dict[uuid.UUID, str] = {}
    names: dict[str, str] = {}
    for raw in ids:
        try:
            wanted[raw if isinstance(raw, uuid.UUID) else uuid.UUID(str(raw))] = str(raw)
        except ValueError:
            names[str(raw)] = str(raw)
    found = list(
        Upstream.objects.filter(is_active=True).filter(
            models.Q(pk__in=wanted) | models.Q(name__in=names)
        )
    )
    found_ids = {u.pk for u in found}
    found_names = {u.name for u in found}
    bad = [text for pk, text in wanted.items() if pk not in found_ids]
    bad.extend(name for name in names if name not in found_names)
    return list({u.pk: u for u in found}.values()), bad


def upstream_routes_for(*, upstream_ids: Collection[uuid.UUID]) -> list[UpstreamRoute]:
    """The active upstreams among these ids, oldest first (from the cached snapshot)."""
    return [r for r in snapshot().ordered if r.id in upstream_ids and r.is_active]


def upstream_names_for(*, upstream_ids: Collection[uuid.UUID]) -> list[str]:
    """Names of the active upstreams among these ids, sorted."""
    snap = snapshot()
    return sorted(r.name for r in snap.ordered if r.id in upstream_ids and r.is_active)


@dataclass(frozen=True, slots=True)
class Candidates:
    """The upstreams to try for one request, in order; pinned: named by X-Upstream-Name."""

    routes: list[UpstreamRoute]
    pinned: bool = False


def upstream_candidates(
    *,
    upstream_ids: Collection[uuid.UUID],
    requested_name: str | None,
    dialect: str,
    model: str,
    allowed_models: Collection[str] = (),
) -> Candidates:
    """The upstreams to try for one request, best first (see upstreams.routing).

    Raises ModelNotAllowed (the key's allowlist, checked first), ModelNotFound (no
    upstream the key may use serves the model), and what upstream_choose raises for a
    pinned name or a key without any active upstream. A request without a model goes
    to one upstream, as upstream_choose picks it.
    """
    if model and allowed_models and not routing.matches_any(allowed_models, model):
        raise ModelNotAllowed(f"This API key may not use the model {model[:200]}")
    if requested_name or not model:
        route = upstream_choose(
            upstream_ids=upstream_ids, requested_name=requested_name, dialect=dialect
        )
        if model and not routing.serves(route, model):
            raise ModelNotFound(f"Upstream {route.name} does not serve the model {model[:200]}")
        return Candidates([route], pinned=bool(requested_name))
    snap = snapshot()
    usable = [r for r in snap.ordered if r.id in upstream_ids and r.is_active]
    if not usable:
        raise UpstreamUnavailable("No upstream this key may use is available")
    serving = routing.serving(usable, model=model, dialect=dialect)
    if not serving:
        raise ModelNotFound(f"No upstream this key may use serves the model {model[:200]}")
    if len(serving) == 1:
        return Candidates(serving)
    return Candidates(routing.ordered(serving, cooling=cooling_ids()))


def upstream_choose(
    *, upstream_ids: Collection[uuid.UUID], requested_name: str | None, dialect: str
) -> UpstreamRoute:
    """Pick the upstream for one request from those a key may use.

    With a requested name: that upstream, or UnknownUpstream (naming only the
    key's own upstreams), UpstreamForbidden, UpstreamUnavailable. Without one: among
    the active upstreams the key may use, the default if it speaks the request's
    dialect, else the oldest that does; if none speaks it, the default, else the
    oldest; UpstreamUnavailable when the key may use no active upstream at all.
    """
    snap = snapshot()
    if requested_name:
        route = snap.by_name.get(requested_name)
        if route is None:
            raise UnknownUpstream(requested_name, upstream_names_for(upstream_ids=upstream_ids))
        if route.id not in upstream_ids:
            raise UpstreamForbidden("This API key may not use that upstream")
        if not route.is_active:
            raise UpstreamUnavailable(f"Upstream {route.name} is not available")
        return route
    usable = [r for r in snap.ordered if r.id in upstream_ids and r.is_active]
    speaking = [r for r in usable if routing.speaks(r, dialect)]
    for candidates in (speaking, usable):
        for route in candidates:
            if route.is_default:
                return route
        if candidates:
            return candidates[0]
    raise UpstreamUnavailable("No upstream this key may use is available")


def upstream_test(*, upstream: Upstream):
    """One cheap call to the upstream (`GET <base_url>/models` with its secret): a
    proxy.catalog.Probe with ok, status, latency_ms and message. Spends no tokens."""
    from proxy.catalog import Probe, upstream_probe  # the proxy owns the one HTTP seam

    route = snapshot().by_id.get(upstream.pk)
    if route is None:
        raise Upstream.DoesNotExist
    try:
        return upstream_probe(route)
    except SecretUnreadable:
        return Probe(False, 0, 0, "Its secret cannot be decrypted with the current keys")
