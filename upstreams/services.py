"""Every write to upstreams. Each function is one transaction: it validates the rules,
makes the change, bumps the registry version (so every worker routes by the new state
from its next request on), writes the action's one history entry as `actor`, and
returns the fresh saved row. The admin site, the admin API and the commands only
translate forms, JSON and arguments into these calls."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from django.db import transaction

from gatewaysite.history import Actor, history_action, history_added, history_changed
from upstreams import crypto, validation
from upstreams.exceptions import InvalidUpstreamData, UpstreamNameTaken
from upstreams.models import RegistryVersion, Upstream

UNSET: Any = object()


def _check(fields: dict[str, Any], *, entry: str = "") -> None:
    checks = {
        "name": validation.name_errors,
        "provider": validation.provider_errors,
        "base_url": validation.base_url_errors,
        "timeout": validation.timeout_errors,
        "api_key": validation.secret_errors,
        "models": validation.models_errors,
        "aliases": validation.aliases_errors,
        "priority": validation.priority_errors,
        "weight": validation.weight_errors,
        "inject_stream_usage": _bool_errors,
    }
    errors = {f: checks[f](v) for f, v in fields.items() if f in checks and checks[f](v)}
    if errors:
        raise InvalidUpstreamData(errors, entry=entry)


def _bool_errors(value: object) -> list[str]:
    return [] if isinstance(value, bool) else ["Must be true or false."]


def _set_secret(upstream: Upstream, secret: str) -> None:
    upstream.secret_encrypted = crypto.encrypt(secret)
    upstream.secret_hint = crypto.secret_hint(secret)


def _take_default(upstream: Upstream) -> None:
    # Clear the others first: the partial unique index allows only one default.
    Upstream.objects.filter(is_default=True).exclude(pk=upstream.pk).update(is_default=False)


@transaction.atomic
def upstream_create(
    *,
    actor: Actor,
    name: str,
    provider: str,
    base_url: str,
    api_key: str,
    is_default: bool = False,
    timeout: float | None = None,
    inject_stream_usage: bool = True,
    models: list[str] | None = None,
    aliases: dict[str, str] | None = None,
    priority: int = 0,
    weight: int = 1,
) -> Upstream:
    """Create an upstream, routable at once; its secret is stored only encrypted."""
    models = [] if models is None else models
    aliases = {} if aliases is None else aliases
    _check(
        {
            "name": name,
            "provider": provider,
            "base_url": base_url,
            "api_key": api_key,
            "timeout": timeout,
            "models": models,
            "aliases": aliases,
            "priority": priority,
            "weight": weight,
        }
    )
    if Upstream.objects.filter(name=name).exists():
        raise UpstreamNameTaken({"name": ["An upstream with this name already exists."]})
    upstream = Upstream(
        name=name,
        provider=provider,
        base_url=validation.normalize_base_url(base_url),
        is_default=is_default,
        timeout=timeout,
        inject_stream_usage=inject_stream_usage,
        models=validation.normalize_models(models),
        aliases=aliases,
        priority=priority,
        weight=weight,
    )
    _set_secret(upstream, api_key)
    if is_default:
        _take_default(upstream)
    upstream.save()
    RegistryVersion.bump()
    history_added(upstream, actor=actor)
    return Upstream.objects.get(pk=upstream.pk)


@transaction.atomic
def upstream_update(
    *,
    upstream: Upstream,
    actor: Actor,
    name: str = UNSET,
    provider: str = UNSET,
    base_url: str = UNSET,
    api_key: str = UNSET,
    is_default: bool = UNSET,
    timeout: float | None = UNSET,
    is_active: bool = UNSET,
    inject_stream_usage: bool = UNSET,
    models: list[str] = UNSET,
    aliases: dict[str, str] = UNSET,
    priority: int = UNSET,
    weight: int = UNSET,
) -> Upstream:
    """Change an upstream; a new api_key is encrypted afresh. In force at once.

    Only the given fields are written; the history entry names those whose value changed
    (a given api_key always counts: "Changed api_key."). A change that changes nothing
    writes nothing.
    """
    given = {
        k: v
        for k, v in {
            "name": name,
            "provider": provider,
            "base_url": base_url,
            "api_key": api_key,
            "timeout": timeout,
            "models": models,
            "aliases": aliases,
            "priority": priority,
            "weight": weight,
        }.items()
        if v is not UNSET
    }
    _check(given)
    if "name" in given and Upstream.objects.filter(name=name).exclude(pk=upstream.pk).exists():
        raise UpstreamNameTaken({"name": ["An upstream with this name already exists."]})
    # Write only the given fields, on the row as it is now (locked): a stale copy in the
    # caller's hands must never undo a deactivation or a new secret committed meanwhile.
    fresh = Upstream.objects.select_for_update().get(pk=upstream.pk)
    changed: list[str] = []
    if "api_key" in given:
        _set_secret(fresh, api_key)
        changed.append("api_key")
    for field, value in (
        ("name", name),
        ("provider", provider),
        ("base_url", validation.normalize_base_url(base_url) if base_url is not UNSET else UNSET),
        ("timeout", timeout),
        ("is_active", is_active),
        ("is_default", is_default),
        ("inject_stream_usage", inject_stream_usage),
        ("models", validation.normalize_models(models) if models is not UNSET else UNSET),
        ("aliases", aliases),
        ("priority", priority),
        ("weight", weight),
    ):
        if value is not UNSET and getattr(fresh, field) != value:
            setattr(fresh, field, value)
            changed.append(field)
    if not changed:
        return Upstream.objects.get(pk=fresh.pk)
    if fresh.is_default:
        _take_default(fresh)
    columns = [f for f in changed if f != "api_key"]
    if "api_key" in changed:
        columns += ["secret_encrypted", "secret_hint"]
    fresh.save(update_fields=[*columns, "updated_at"])
    RegistryVersion.bump()
    history_changed(fresh, actor=actor, fields=changed)
    return Upstream.objects.get(pk=fresh.pk)


@transaction.atomic
def upstream_deactivate(*, upstream: Upstream, actor: Actor) -> Upstream:
    """Soft delete: the upstream stays for the logs but no longer routes anything.

    Deactivating an inactive upstream changes nothing and writes no history."""
    fresh = Upstream.objects.select_for_update().get(pk=upstream.pk)
    if fresh.is_active:
        fresh.is_active = False
        fresh.save(update_fields=["is_active", "updated_at"])
        RegistryVersion.bump()
        history_action(fresh, actor=actor, action="Deactivated.")
    return Upstream.objects.get(pk=fresh.pk)


@dataclass(frozen=True)
class ImportResult:
    created: int
    skipped_existing: int
    skipped_not_empty: bool
    created_names: tuple[str, ...] = ()  # created, or that a dry run would create
    existing_names: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()  # accepted but probably wrong (validation.*_warnings)


def _parse_entries(raw: str, source: str = "UPSTREAMS") -> list[dict[str, Any]]:
    try:
        entries = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise InvalidUpstreamData(
            {source: [f"is not valid JSON (line {exc.lineno}, column {exc.colno})"]}
        ) from None
    if not isinstance(entries, list):
        raise InvalidUpstreamData({source: ["must be a JSON list of objects"]})
    known = {
        "name",
        "provider",
        "base_url",
        "api_key",
        "is_default",
        "timeout",
        "inject_stream_usage",
        "models",
        "aliases",
        "priority",
        "weight",
    }
    for index, entry in enumerate(entries):
        label = f"entry {index}" + (
            f" ({entry.get('name')})" if isinstance(entry, dict) and entry.get("name") else ""
        )
        if not isinstance(entry, dict):
            raise InvalidUpstreamData({"entry": ["must be an object"]}, entry=label)
        missing = [f for f in ("name", "provider", "base_url", "api_key") if f not in entry]
        unknown = sorted(set(entry) - known)
        errors = {f: ["is required"] for f in missing} | {
            f: ["is not a known field"] for f in unknown
        }
        if errors:
            raise InvalidUpstreamData(errors, entry=label)
        _check(entry, entry=label)
        if not isinstance(entry.get("is_default", False), bool):
            raise InvalidUpstreamData({"is_default": ["must be true or false"]}, entry=label)
    names = [e["name"] for e in entries]
    if len(set(names)) != len(names):
        raise InvalidUpstreamData({"name": [f"names repeat within {source}"]})
    if sum(1 for e in entries if e.get("is_default")) > 1:
        raise InvalidUpstreamData({"is_default": ["at most one entry may be the default"]})
    return entries


@transaction.atomic
def upstreams_import(
    *,
    actor: Actor,
    raw_json: str,
    if_empty: bool = False,
    dry_run: bool = False,
    source: str = "UPSTREAMS",
) -> ImportResult:
    """Import upstreams from UPSTREAMS JSON, all or nothing; existing names are kept as they are.

    Each upstream imported has its own history entry ("Added."), as if added one by one.

    dry_run checks everything and says what would be imported, writing nothing. `source`
    names where the JSON came from in error messages (a file's name).
    """
    entries = _parse_entries(raw_json, source)
    if if_empty and Upstream.objects.exists():
        return ImportResult(created=0, skipped_existing=0, skipped_not_empty=True)
    existing = set(
        Upstream.objects.filter(name__in=[e["name"] for e in entries]).values_list(
            "name", flat=True
        )
    )
    fresh = [e for e in entries if e["name"] not in existing]
    warnings = tuple(
        f"{e['name']}: {w}" for e in fresh for w in validation.base_url_warnings(e["base_url"])
    )
    if not dry_run:
        for entry in fresh:
            upstream_create(actor=actor, **entry)
    return ImportResult(
        created=len(fresh),
        skipped_existing=len(existing),
        skipped_not_empty=False,
        created_names=tuple(e["name"] for e in fresh),
        existing_names=tuple(sorted(existing)),
        warnings=warnings,
    )


@dataclass(frozen=True)
class ReencryptResult:
    reencrypted: int
    already_current: int
    unreadable: list[str]


def upstream_secrets_reencrypt() -> ReencryptResult:
    """Re-encrypt every secret under the primary key, one row per transaction.

    Safe to re-run and to kill halfway: each row is either still readable with a
    previous key or already under the new one. Unreadable secrets are reported
    by upstream name and left untouched.
    """
    reencrypted = current = 0
    unreadable: list[str] = []
    for pk in Upstream.objects.order_by("pk").values_list("pk", flat=True):
        with transaction.atomic():
            upstream = Upstream.objects.select_for_update().get(pk=pk)
            if crypto.is_primary(upstream.secret_encrypted):
                current += 1
                continue
            try:
                upstream.secret_encrypted = crypto.reencrypt(upstream.secret_encrypted)
            except crypto.SecretUnreadable:
                unreadable.append(upstream.name)
                continue
            upstream.save(update_fields=["secret_encrypted", "updated_at"])
            RegistryVersion.bump()
            reencrypted += 1
    return ReencryptResult(reencrypted=reencrypted, already_current=current, unreadable=unreadable)
