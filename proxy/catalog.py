"""GET /v1/models answered by the gateway, and the upstream probe behind it and /test.

A key's models are its upstreams' `models` names and alias keys; an upstream whose
list is empty or holds patterns also contributes what its own `GET /models` lists
(filtered by those patterns), cached per worker for up to CACHE_SECONDS. An upstream
that cannot list its models contributes its names and aliases only. The key's own
allowlist filters the whole. Listing costs no tokens.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field

from django.conf import settings

from proxy import dialects, forward
from proxy.errors import UpstreamTimeout, UpstreamUnreachable
from upstreams.crypto import SecretUnreadable
from upstreams.routing import matches_any, model_matches

CACHE_SECONDS = 300.0
# A list that could not be read is asked for again only after this long.
FAILED_CACHE_SECONDS = 30.0
PROBE_TIMEOUT = 10.0
MAX_LIST_BYTES = 4 * 1024 * 1024
ANTHROPIC_VERSION = "2023-06-01"
# (route id, base_url, secret hint) -> (monotonic expiry, model ids or None)
_lists: dict[tuple, tuple[float, list[str] | None]] = {}


@dataclass
class Probe:
    ok: bool
    status: int  # 0 when no answer came
    latency_ms: int
    message: str
    model_ids: list[str] | None = field(default=None, repr=False)


def upstream_probe(route, *, timeout: float = PROBE_TIMEOUT) -> Probe:
    """One `GET <base_url>/models` with the upstream's secret: status, latency, model ids."""
    name, value = dialects.secret_header(provider=route.provider, secret=route.secret)
    headers = {name: value, "Accept": "application/json"}
    if route.provider == dialects.ANTHROPIC:
        headers["anthropic-version"] = ANTHROPIC_VERSION
    target = "models?limit=1000" if route.provider == dialects.ANTHROPIC else "models"
    read_timeout = min(route.timeout or timeout, timeout)
    started = time.monotonic()
    try:
        answer = forward.upstream_send(
            method="GET",
            url=forward.upstream_url(base_url=route.base_url, target=target),
            headers=headers,
            body=None,
            connect_timeout=min(settings.PROXY_CONNECT_TIMEOUT, read_timeout),
            read_timeout=read_timeout,
        )
    except (UpstreamUnreachable, UpstreamTimeout) as exc:
        return Probe(False, 0, _ms(started), str(exc))
    try:
        body = _read_all(answer)
    except Exception:  # a broken or endless answer: the status still says something
        body = b""
    finally:
        answer.close()
    latency = _ms(started)
    ids = _model_ids(body) if 200 <= answer.status < 300 else None
    if ids is None:
        ok = False
        message = f"The upstream answered {answer.status}" + (
            "" if 200 <= answer.status < 300 else " (its secret or base_url may be wrong)"
        )
        if 200 <= answer.status < 300:
            message += "; its model list could not be read"
    else:
        ok, message = True, f"{len(ids)} models listed"
    return Probe(ok, answer.status, latency, message, ids)


def _ms(started: float) -> int:
    return round((time.monotonic() - started) * 1000)


def _read_all(answer) -> bytes:
    parts, size = [], 0
    while chunk := answer.read_chunk():
        parts.append(chunk)
        size += len(chunk)
        if size > MAX_LIST_BYTES:
            break
    return b"".join(parts)


def _model_ids(body: bytes) -> list[str] | None:
    """Model ids from OpenAI's or Anthropic's list shape ({"data": [{"id": …}]})."""
    try:
        payload = json.loads(body)
    except (ValueError, RecursionError):
        return None
    data = payload.get("data") if isinstance(payload, dict) else None
    if not isinstance(data, list):
        return None
    return [m["id"] for m in data if isinstance(m, dict) and isinstance(m.get("id"), str)]


def upstream_model_ids(route) -> list[str] | None:
    """The upstream's own model list, cached per worker; None when it could not be read."""
    key = (route.id, route.base_url, route.provider, route._secret_encrypted)
    now = time.monotonic()
    cached = _lists.get(key)
    if cached is not None and cached[0] > now:
        return cached[1]
    try:
        ids = upstream_probe(route).model_ids
    except SecretUnreadable:
        ids = None
    _lists[key] = (now + (CACHE_SECONDS if ids is not None else FAILED_CACHE_SECONDS), ids)
    return ids


def models_for_routes(routes, *, allowed_models=()) -> dict[str, str]:
    """{model id: the upstream that offers it first}, filtered by the key's allowlist."""
    found: dict[str, str] = {}
    for route in routes:
        names = [m for m in route.models if "*" not in m]
        patterns = [m for m in route.models if "*" in m]
        names += list(route.aliases)
        if not route.models or patterns:
            listed = upstream_model_ids(route) or []
            names += [m for m in listed if not patterns or matches_any(patterns, m)]
        for name in names:
            found.setdefault(name, route.name)
    if allowed_models:
        found = {m: u for m, u in found.items() if any(model_matches(p, m) for p in allowed_models)}
    return found


def models_answer(
    *, routes, allowed_models, dialect: str, model_id: str | None
) -> tuple[int, bytes]:
    """(status, JSON body) of GET /v1/models or /v1/models/{id} in the caller's dialect."""
    found = models_for_routes(routes, allowed_models=allowed_models)
    if model_id is not None:
        if model_id not in found:
            message = f"The model {model_id[:200]} is not available to this API key"
            return 404, dialects.error_body(
                dialect=dialect, status=404, code="model_not_found", message=message
            )
        return 200, json.dumps(_entry(dialect, model_id, found[model_id])).encode()
    ids = sorted(found)
    entries = [_entry(dialect, m, found[m]) for m in ids]
    if dialect == dialects.ANTHROPIC:
        payload = {
            "data": entries,
            "has_more": False,
            "first_id": ids[0] if ids else None,
            "last_id": ids[-1] if ids else None,
        }
    else:
        payload = {"object": "list", "data": entries}
    return 200, json.dumps(payload).encode()


def _entry(dialect: str, model_id: str, upstream: str) -> dict:
    if dialect == dialects.ANTHROPIC:
        return {
            "type": "model",
            "id": model_id,
            "display_name": model_id,
            "created_at": "1970-01-01T00:00:00Z",
        }
    return {"id": model_id, "object": "model", "created": 0, "owned_by": upstream}
