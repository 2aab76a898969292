"""The one history entry of each write (Django's admin LogEntry), whoever made it.

Services write it in their own transaction, so the admin site's history pages show
the same entry for a change whether it came from the admin site (the signed-in
user), the admin API (the user ``admin-api``) or a command (``manage-py``). The two
non-people have an unusable password and are inactive and not staff: they can never
sign in. Messages name fields, never values (a new upstream secret is "Changed api_key.").
"""

from __future__ import annotations

import json
from collections.abc import Iterable

from django.contrib.admin.models import ADDITION, CHANGE, DELETION, LogEntry
from django.contrib.auth import get_user_model
from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.hashers import make_password
from django.contrib.contenttypes.models import ContentType
from django.db import models

# Who made a change: the admin site's signed-in user, or the name of a non-person.
Actor = AbstractBaseUser | str

ADMIN_API = "admin-api"
COMMAND = "manage-py"


def actor_user_id(actor: Actor) -> int:
    """The user id a history entry is written as (a non-person's user is made once)."""
    if not isinstance(actor, str):
        return actor.pk
    User = get_user_model()  # noqa: N806 - Django's idiom
    user, _ = User.objects.get_or_create(
        username=actor,
        defaults={
            "password": make_password(None),  # unusable: no password can ever match
            "is_active": False,
            "is_staff": False,
            "is_superuser": False,
        },
    )
    return user.pk


def _content_type_id(obj: models.Model) -> int:
    # Read, not taken from ContentType's per-process cache: a flush and re-migrate (tests,
    # a restore from backup) renumbers content types, and a stale id fails the whole write.
    # Writes are rare, so one small query costs nothing; clearing that cache on every
    # write (what this replaced) made every other reader miss it too.
    return (
        ContentType.objects.filter(app_label=obj._meta.app_label, model=obj._meta.model_name)
        .values_list("pk", flat=True)
        .get()
    )


def _entry(
    obj: models.Model, user_id: int, type_id: int, flag: int, message: str | list
) -> LogEntry:
    return LogEntry(
        user_id=user_id,
        content_type_id=type_id,
        object_id=str(obj.pk),
        object_repr=str(obj)[:200],
        action_flag=flag,
        change_message=message if isinstance(message, str) else json.dumps(message),
    )


def history_record(obj: models.Model, *, actor: Actor, flag: int, message: str | list) -> None:
    _entry(obj, actor_user_id(actor), _content_type_id(obj), flag, message).save()


def history_record_many(
    changes: Iterable[tuple[models.Model, int, str | list]], *, actor: Actor
) -> None:
    """One entry per (obj, flag, message) of one model, written together (an import)."""
    changes = list(changes)
    if changes:
        user_id, type_id = actor_user_id(actor), _content_type_id(changes[0][0])
        LogEntry.objects.bulk_create(
            [_entry(obj, user_id, type_id, flag, message) for obj, flag, message in changes],
            batch_size=500,
        )


ADDED: list = [{"added": {}}]


def changed_message(fields: Iterable[str]) -> list:
    """The admin's wording for a change of these fields ("Changed description and name.")."""
    return [{"changed": {"fields": sorted(fields)}}]


def history_added(obj: models.Model, *, actor: Actor) -> None:
    """Record the creation of obj, as the admin site words it ("Added.")."""
    history_record(obj, actor=actor, flag=ADDITION, message=ADDED)


def history_changed(obj: models.Model, *, actor: Actor, fields: Iterable[str]) -> None:
    """Record a change of the named fields ("Changed description and name.")."""
    history_record(obj, actor=actor, flag=CHANGE, message=changed_message(fields))


def history_action(obj: models.Model, *, actor: Actor, action: str) -> None:
    """Record an action that is not a field edit: "Revoked.", "Rotated; …"."""
    history_record(obj, actor=actor, flag=CHANGE, message=action)


def history_deleted(obj: models.Model, *, actor: Actor) -> None:
    """Record the deletion of obj ("Deleted."), before it is deleted."""
    history_record(obj, actor=actor, flag=DELETION, message="Deleted.")
