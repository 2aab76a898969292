"""History entries for changes the admin API makes itself (gatewaysite.history, as ``admin-api``).

Services that take an ``actor`` write their own entry; these are for the API views whose
services do not yet (prices, upstreams' callers that predate it).
"""

from __future__ import annotations

from collections.abc import Iterable

from django.contrib.admin.models import ADDITION, CHANGE
from django.db import models

from gatewaysite.history import ADMIN_API, COMMAND, actor_user_id, history_record

AUDIT_USERNAME = ADMIN_API
COMMAND_USERNAME = COMMAND


def audit_user_id(username: str = AUDIT_USERNAME) -> int:
    return actor_user_id(username)


def audit_added(obj: models.Model, *, note: str = "", username: str = AUDIT_USERNAME) -> None:
    """Record the creation of obj, as the admin site does ("Added.")."""
    message = [{"added": {}}] if not note else f"Added ({note})."
    history_record(obj, actor=username, flag=ADDITION, message=message)


def audit_changed(obj: models.Model, *, fields: Iterable[str]) -> None:
    """Record a change of the named fields, as the admin site does ("Changed name.")."""
    history_record(obj, actor=AUDIT_USERNAME, flag=CHANGE,
                   message=[{"changed": {"fields": sorted(fields)}}])  # fmt: skip


def audit_action(obj: models.Model, *, action: str, username: str = AUDIT_USERNAME) -> None:
    """Record an action that is not a field edit: "Revoked.", "Rotated; new key …"."""
    history_record(obj, actor=username, flag=CHANGE, message=action)
