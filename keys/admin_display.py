"""What the admin site shows of a key beyond its form: status colours, its rotation lineage,
its usage over a chosen period, links to its logs, and the SDK snippets of a new key."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from urllib.parse import urlencode

from django.db.models import Exists, OuterRef
from django.urls import reverse
from django.utils import timezone

from keys.models import APIKey
from keys.selectors import key_lineages
from logs.usage import usage_summary

# The key page's usage periods: name -> (label, days back from today; None = this month).
USAGE_PERIODS = {
    "today": ("Today", 1),
    "7d": ("7 days", 7),
    "30d": ("30 days", 30),
    "month": ("This month", None),
}
DEFAULT_USAGE_PERIOD = "30d"


def status_word(internal: str) -> str:
    """The contract's status vocabulary (active, grace, expired, revoked)."""
    return "grace" if internal == "ending" else internal


def replaced_keys() -> Exists:
    """True for a key another key replaced by rotation (it has a successor)."""
    return Exists(APIKey.objects.filter(rotated_from=OuterRef("pk")))


def lineage_members(key: APIKey) -> list[APIKey]:
    """The key and every key rotated from or to it, oldest first."""
    lineages = key_lineages()
    root = lineages.get(key.pk, key.pk)
    ids = [k for k, r in lineages.items() if r == root] or [key.pk]
    return list(APIKey.objects.filter(pk__in=ids).order_by("created_at", "id"))


def lineage_sizes(keys: list[APIKey]) -> dict:
    """How many keys are in each listed key's lineage (1: never rotated), by key id."""
    lineages = key_lineages()
    sizes: dict = {}
    for root in lineages.values():
        sizes[root] = sizes.get(root, 0) + 1
    return {k.pk: sizes.get(lineages.get(k.pk, k.pk), 1) for k in keys}


def _period_range(period: str, now: dt.datetime) -> tuple[dt.datetime, str]:
    label, days = USAGE_PERIODS[period]
    today = now.astimezone(dt.UTC).date()
    first = today.replace(day=1) if days is None else today - dt.timedelta(days=days - 1)
    return dt.datetime.combine(first, dt.time.min, tzinfo=dt.UTC), label


def key_usage(key: APIKey, period: str, *, now: dt.datetime | None = None) -> dict:
    """The lineage's requests, errors, tokens and cost per model over a period, with totals."""
    now = now or timezone.now()
    if period not in USAGE_PERIODS:
        period = DEFAULT_USAGE_PERIOD
    since, label = _period_range(period, now)
    summary = usage_summary(
        group_by=["model"], since=since, now=now, api_key_id=key.pk, lineage=True
    )
    logs = reverse("admin:logs_requestlog_changelist")
    for item in summary["items"]:
        item["cost"] = Decimal(item["cost_usd"]) if item["cost_usd"] is not None else None
        item["logs_url"] = (
            f"{logs}?{urlencode({'api_key__id__exact': key.pk, 'model': item['model']})}"
        )
    totals = summary["totals"]
    totals["cost"] = Decimal(totals["cost_usd"]) if totals["cost_usd"] is not None else None
    return {
        "period": period,
        "label": label,
        "since": since,
        "items": sorted(summary["items"], key=lambda i: -(i["cost"] or 0)),
        "totals": totals,
        "periods": [(name, text) for name, (text, _) in USAGE_PERIODS.items()],
        "usage_url": reverse("admin:logs_requestlog_usage")
        + f"?{urlencode({'key': key.pk, 'group_by': 'model', 'range': '30d'})}",
    }


def key_overview(key: APIKey, period: str, key_status) -> dict:
    """The key page's panels: lineage (with each member's status and logs) and usage."""
    logs = reverse("admin:logs_requestlog_changelist")
    members = lineage_members(key)
    lineage = [
        {
            "key": member,
            "is_this": member.pk == key.pk,
            "status": status_word(key_status(member)),
            "url": reverse("admin:keys_apikey_change", args=[member.pk]),
            "logs_url": f"{logs}?api_key__id__exact={member.pk}",
        }
        for member in members
    ]
    return {
        "lineage": lineage if len(lineage) > 1 else [],
        "logs_url": f"{logs}?api_key__id__exact={key.pk}",
        "errors_url": f"{logs}?api_key__id__exact={key.pk}&status_class=error",
        "usage": key_usage(key, period),
    }


@dataclass(frozen=True)
class Snippet:
    title: str
    code: str


def sdk_snippets(*, gateway_url: str, plaintext: str) -> list[Snippet]:
    """Ready-to-paste clients for a new key. The OpenAI SDK's base_url includes /v1; the
    Anthropic SDK adds /v1/messages itself, so its base_url is the gateway's root."""
    root = gateway_url.rstrip("/")
    return [
        Snippet(
            "OpenAI SDK (Python)",
            "from openai import OpenAI\n\n"
            f'client = OpenAI(base_url="{root}/v1", api_key="{plaintext}")\n'
            "reply = client.chat.completions.create(\n"
            '    model="gpt-4o-mini", messages=[{"role": "user", "content": "Hello"}]\n'
            ")\nprint(reply.choices[0].message.content)",
        ),
        Snippet(
            "Anthropic SDK (Python)",
            "from anthropic import Anthropic\n\n"
            f'client = Anthropic(base_url="{root}", api_key="{plaintext}")\n'
            "reply = client.messages.create(\n"
            '    model="claude-sonnet-4-5", max_tokens=256,\n'
            '    messages=[{"role": "user", "content": "Hello"}],\n'
            ")\nprint(reply.content[0].text)",
        ),
        Snippet(
            "Environment variables (either SDK)",
            f"export OPENAI_BASE_URL={root}/v1 OPENAI_API_KEY={plaintext}\n"
            f"export ANTHROPIC_BASE_URL={root} ANTHROPIC_API_KEY={plaintext}",
        ),
    ]
