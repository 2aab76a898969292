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
    def current(cls) -> object:
        """The current version, or None when there is none yet.

        Read on every proxied request, so in plain SQL: the ORM's query building costs
        ten times the read itself (about 175 µs against 10 µs on SQLite). The value is
        only ever compared with another value read the same way.
        """
        with connection.cursor() as cursor:
            cursor.execute(cls._current_sql())
            row = cursor.fetchone()
        return row[0] if row else None

    @classmethod
    def _current_sql(cls) -> str:
        table = connection.ops.quote_name(cls._meta.db_table)
        return f"SELECT version FROM {table} WHERE id = 1"  # noqa: S608 - our own table name
