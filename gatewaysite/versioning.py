"""A single-row "version stamp" that makes a per-process cache exact.

A service that changes cached data calls ``bump()`` inside its own transaction;
a reader calls ``current()`` on every request (one primary-key read) and drops
its cache when the value differs from the one it cached under. The value is a
random UUID, not a counter, so a reset table (a flush, a restore from backup)
can never bring back an old value by coincidence.
"""

from __future__ import annotations

import uuid

from django.db import connection, models


class VersionStamp(models.Model):
    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    version = models.UUIDField(default=uuid.uuid4)

    class Meta:
        abstract = True

    @classmethod
    def bump(cls) -> None:
        """Change the version; call inside the transaction that changes the cached data.

        On PostgreSQL that transaction also commits synchronously, whatever the
        connection's default: a revocation that was acknowledged must survive a crash.
        """
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL synchronous_commit TO on")
        cls.objects.bulk_create(
            [cls(id=1, version=uuid.uuid4())],
            update_conflicts=True,
            unique_fields=["id"],
            update_fields=["version"],
        )

    @classmethod
    def current(cls) -> uuid.UUID | None:
        return cls.objects.filter(id=1).values_list("version", flat=True).first()
