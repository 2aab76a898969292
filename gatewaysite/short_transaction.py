"""The proxy's hot-path statements: their cursor, and one short write transaction, for
SQLite and PostgreSQL alike.

Django's `transaction.atomic()` costs about 60 µs of Python on entry and exit (savepoint
bookkeeping, autocommit switched off and on again), twice the statements it wraps on
SQLite. Outside any atomic block a plain BEGIN / COMMIT does the same; inside one (the
tests' TestCase, a caller's own transaction) this is `transaction.atomic()` itself.

On SQLite the database is a library call, so Django's cursor is most of a statement's
cost: a new cursor and its wrappers took about 40 µs of Python per statement against
4 µs for sqlite3's own (in-process, `SELECT ?`, loaded machine). `hot_path_cursor`
hands out sqlite3's cursor, taking Django's `%s` placeholders (converted once per
statement text) and raising Django's exceptions, for the few statements of every
proxied request (version reads, the log row's writes, limits). Where Django's cursor
does more than that (logging queries: DEBUG, the tests' CaptureQueriesContext; inside
an atomic block, whose broken-transaction guard it keeps) it is Django's cursor.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator

from django.db import connection, transaction
from django.db.backends.sqlite3.base import FORMAT_QMARK_REGEX


@functools.lru_cache(maxsize=256)
def _qmark(sql: str) -> str:
    # What Django's SQLiteCursorWrapper does to every statement, once per text.
    return FORMAT_QMARK_REGEX.sub("?", sql).replace("%%", "%")


class _SQLiteCursor:
    """sqlite3's cursor with Django's placeholders: what the hot path uses of a cursor."""

    __slots__ = ("_cursor",)

    def __init__(self, cursor):
        self._cursor = cursor

    def execute(self, sql: str, params=None):
        if params is None:
            return self._cursor.execute(sql)
        return self._cursor.execute(_qmark(sql), params)

    def fetchone(self):
        return self._cursor.fetchone()

    def fetchall(self):
        return self._cursor.fetchall()

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount


@contextlib.contextmanager
def hot_path_cursor() -> Iterator[object]:
    """A cursor for a hot-path statement: sqlite3's own on SQLite outside atomic blocks
    and query logging, Django's everywhere else."""
    if connection.vendor != "sqlite" or connection.queries_logged or connection.in_atomic_block:
        with connection.cursor() as cursor:
            yield cursor
        return
    connection.close_if_health_check_failed()
    connection.ensure_connection()
    with connection.wrap_database_errors:
        cursor = connection.connection.cursor()
        try:
            yield _SQLiteCursor(cursor)
        finally:
            cursor.close()


@contextlib.contextmanager
def short_transaction() -> Iterator[object]:
    """Yield a cursor inside one transaction: committed at the end, rolled back on error
    (a failed COMMIT too); when even the ROLLBACK fails, the connection is closed.

    On SQLite, BEGIN IMMEDIATE: the write lock is taken up front, as settings'
    transaction_mode does for Django's own transactions (no upgrade deadlock).
    """
    if connection.in_atomic_block or not connection.get_autocommit():
        with transaction.atomic(), connection.cursor() as cursor:
            yield cursor
        return
    abandoned = False
    try:
        with hot_path_cursor() as cursor:
            cursor.execute("BEGIN IMMEDIATE" if connection.vendor == "sqlite" else "BEGIN")
            committed = False
            try:
                yield cursor
                cursor.execute("COMMIT")
                committed = True
            finally:
                if not committed:  # a statement or the COMMIT failed: its error goes on
                    abandoned = not _rolled_back(cursor)
    finally:
        # A transaction that would not end must not outlive the request on a persistent
        # connection (on SQLite it holds the write lock against every other worker, and
        # Django, seeing autocommit, would never end it): the connection goes with it.
        if abandoned:
            connection.close()


def _rolled_back(cursor) -> bool:
    try:
        cursor.execute("ROLLBACK")
    except Exception:
        return False
    return True
