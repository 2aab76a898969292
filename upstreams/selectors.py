"""Reads of upstreams that other apps use."""

from __future__ import annotations

import uuid
from collections.abc import Collection, Iterable
from typing import Any

from django.db import models

from upstreams.exceptions import UnknownUpstream, UpstreamForbidden, UpstreamUnavailable
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


def upstream_names_for(*, upstream_ids: Collection[uuid.UUID]) -> list[str]:
    """Names of the active upstreams among these ids, sorted."""
    snap = snapshot()
    return sorted(r.name for r in snap.ordered if r.id in upstream_ids and r.is_active)


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
    speaking = [r for r in usable if r.provider == dialect]
    for candidates in (speaking, usable):
        for route in candidates:
            if route.is_default:
                return route
        if candidates:
            return candidates[0]
    raise UpstreamUnavailable("No upstream this key may use is available")
