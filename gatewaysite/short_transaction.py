"""One short write transaction on the proxy's hot path, for SQLite and PostgreSQL alike.

Django's `transaction.atomic()` costs about 60 µs of Python on entry and exit (savepoint
bookkeeping, autocommit switched off and on again), twice the statements it wraps on
SQLite. Outside any atomic block a plain BEGIN / COMMIT does the same; inside one (the
tests' TestCase, a caller's own transaction) this is `transaction.atomic()` itself.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from django.db import connection, transaction


@contextlib.contextmanager
def short_transaction() -> Iterator[object]:
    """Yield a cursor inside one transaction: committed at the end, rolled back on error.

    On SQLite, BEGIN IMMEDIATE: the write lock is taken up front, as settings'
    transaction_mode does for Django's own transactions (no upgrade deadlock).
    """
    if connection.in_atomic_block or not connection.get_autocommit():
        with transaction.atomic(), connection.cursor() as cursor:
            yield cursor
        return
    with connection.cursor() as cursor:
        cursor.execute("BEGIN IMMEDIATE" if connection.vendor == "sqlite" else "BEGIN")
        try:
            yield cursor
        except BaseException:
            cursor.execute("ROLLBACK")
            raise
        cursor.execute("COMMIT")
