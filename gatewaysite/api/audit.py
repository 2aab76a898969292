"""Django admin history (LogEntry) for every change made through the admin API.

The admin token is not a person, so entries are written as one dedicated user,
``admin-api``: it has an unusable password and is inactive and not staff, so it
can never sign in anywhere; it exists only so the admin site's history pages
show "admin-api" against each change made through the API. Messages name
fields, never values (a new upstream secret is "Changed api_key.").
"""

from __future__ import annotations

from collections.abc import Iterable

from django.contrib.admin.models import ADDITION, CHANGE, LogEntry
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.contrib.contenttypes.models import ContentType
from django.db import models

AUDIT_USERNAME = "admin-api"
# The same kind of user for changes made by `manage.py` commands.
COMMAND_USERNAME = "manage-py"


def audit_user_id(username: str = AUDIT_USERNAME) -> int:
    User = get_user_model()  # noqa: N806 - Django's idiom
    user, _ = User.objects.get_or_create(
        username=username,
        defaults={
            "password": make_password(None),  # unusable: no password can ever match
            "is_active": False,
            "is_staff": False,
            "is_superuser": False,
        },
    )
    return user.pk


def _log(obj: models.Model, flag: int, message, *, username: str = AUDIT_USERNAME) -> None:
    # Content type ids are cached per process; a flush and re-migrate (tests, a restore
    # from backup) gives them new ids, and a stale one would fail the whole change.
    ContentType.objects.clear_cache()
    LogEntry.objects.log_actions(
        user_id=audit_user_id(username),
        queryset=[obj],
        action_flag=flag,
        change_message=message,
        single_object=True,
    )


def audit_added(obj: models.Model, *, note: str = "", username: str = AUDIT_USERNAME) -> None:
    """Record the creation of obj, as the admin site does ("Added.")."""
    message = [{"added": {}}]
    _log(obj, ADDITION, message if not note else f"Added ({note}).", username=username)


def audit_changed(obj: models.Model, *, fields: Iterable[str]) -> None:
    """Record a change of the named fields, as the admin site does ("Changed name.")."""
    _log(obj, CHANGE, [{"changed": {"fields": sorted(fields)}}])


def audit_action(obj: models.Model, *, action: str, username: str = AUDIT_USERNAME) -> None:
    """Record an action that is not a field edit: "Revoked.", "Rotated; new key …"."""
    _log(obj, CHANGE, action, username=username)
