"""A single-row "version stamp" that makes a per-process cache exact.

A service that changes cached data calls ``bump()`` inside its own transaction;
a reader calls ``current()`` on every request (one primary-key read) and drops
its cache when the value differs from the one it cached under. The value is a
random UUID, not a counter, so a reset table (a flush, a restore from backup)
can never bring back an old value by coincidence.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import uuid
from collections.abc import Iterator

from django.apps import apps
from django.db import connection, models

from gatewaysite.short_transaction import hot_path_cursor

# Within versions_read_once(): {table: version}, filled by the first current() call.
_read_once: contextvars.ContextVar[dict | None] = contextvars.ContextVar(
    "versions_read_once", default=None
)


@contextlib.contextmanager
def versions_read_once() -> Iterator[None]:
    """Within the block, every version row is read once, all in one query, when the
    first is asked for. For the start of a proxied request (keys, upstreams, limits,
    prices: four round trips become one); still exact, since the read happens after
    the request arrived. Not for what runs when a long answer ends (its price must be
    the one in force then): the block ends when the view returns.
    """
    token = _read_once.set({})
    try:
        yield
    finally:
        _read_once.reset(token)


@functools.cache
def _all_versions_sql(vendor: str) -> str:
    qn = connection.ops.quote_name
    return " UNION ALL ".join(
        f"SELECT '{model._meta.db_table}', version FROM {qn(model._meta.db_table)} WHERE id = 1"  # noqa: S608
        for model in apps.get_models()
        if issubclass(model, VersionStamp)
    )


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
        once = _read_once.get()
        if once is not None:
            if not once:
                with hot_path_cursor() as cursor:
                    cursor.execute(_all_versions_sql(connection.vendor))
                    once.update(cursor.fetchall())
                once[None] = None  # read: a table without its row stays unread
            return once.get(cls._meta.db_table)
        with hot_path_cursor() as cursor:
            cursor.execute(cls._current_sql())
            row = cursor.fetchone()
        return row[0] if row else None

    @classmethod
    def current_sql(cls) -> str:
        """The SELECT that current() runs, to read the version inside another statement
        (as a scalar subquery); its value compares equal to current()'s."""
        return cls._current_sql()

    @classmethod
    @functools.cache
    def _current_sql(cls) -> str:
        table = connection.ops.quote_name(cls._meta.db_table)
        return f"SELECT version FROM {table} WHERE id = 1"  # noqa: S608 - our own table name
