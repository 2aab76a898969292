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

On PostgreSQL Django's cursor binds every parameter on the client: psycopg quotes each
value into the statement's text (about a tenth of a worker's busy samples under section
5's load, py-spy), so every execution is a new text that the server parses and plans
again. `hot_path_cursor` hands out psycopg's own cursor there, which sends the values
apart from the text (server-side binding), so a statement the connection has run
`prepare_threshold` times (settings) is prepared once and then only executed:
`limits_admit`'s call went from 0.415 to 0.350 ms sequentially (pgbench, simple against
prepared protocol). Behind PgBouncer (DB_PGBOUNCER) nothing is prepared.

SQLite has one write lock for every process. A statement that finds it taken waits in
SQLite's busy handler, a C sleep (1, 2, 5, 10 ms ...) that blocks the whole gevent
worker: none of its other requests runs meanwhile. Sampled with py-spy under `make
bench`'s section 5 (JSON at concurrency 64, 2 workers), the hot path's BEGIN IMMEDIATE
alone took 430 µs of a worker's time per request for a key with rate limits and 630 µs
for one with budgets too (a limited request holds the lock longer, for its count and
reservation, so the other worker finds it taken more often), the autocommit writes of a
key without limits about 300 µs. So the hot path's writes (`cursor.write`, and
`short_transaction`'s BEGIN IMMEDIATE) ask SQLite not to wait (busy_timeout 0 for that
one statement) and wait here instead, in a sleep that lets the worker's other greenlets
run (`time.sleep` is gevent's in a gunicorn worker), for as long as the busy handler
would have (the connection's `timeout`), then fail as it would have ("database is
locked"). A statement refused SQLITE_BUSY did nothing, so running it again is safe.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import sqlite3
import time
from collections.abc import Iterator

import psycopg
from django.db import DEFAULT_DB_ALIAS, connections, transaction
from django.db.backends.sqlite3.base import FORMAT_QMARK_REGEX


@functools.lru_cache(maxsize=256)
def _qmark(sql: str) -> str:
    # What Django's SQLiteCursorWrapper does to every statement, once per text.
    return FORMAT_QMARK_REGEX.sub("?", sql).replace("%%", "%")


# Pauses between tries for SQLite's write lock, in seconds, the last one repeated. A
# limited request holds the lock for about 0.1-0.3 ms, so the first tries come soon;
# each pause runs the worker's other greenlets, so a longer one costs no idle worker.
_LOCK_PAUSES = (0.0002, 0.0005, 0.001, 0.002)


def _is_busy(exc: sqlite3.OperationalError) -> bool:
    return getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_BUSY


class _SQLiteCursor:
    """sqlite3's cursor with Django's placeholders: what the hot path uses of a cursor."""

    __slots__ = ("_cursor", "_timeout")

    def __init__(self, cursor, timeout: float):
        self._cursor = cursor
        self._timeout = timeout

    def execute(self, sql: str, params=None):
        if params is None:
            return self._cursor.execute(sql)
        return self._cursor.execute(_qmark(sql), params)

    def write(self, sql: str, params=None):
        """execute() for a statement that takes the write lock: waiting for it (when
        another process has it) lets this worker's other greenlets run."""
        cursor = self._cursor
        sql = _qmark(sql) if params is not None else sql
        args = (sql,) if params is None else (sql, params)
        # The pragmas on the connection's own cursors: this one keeps the statement's rows.
        cursor.connection.execute("PRAGMA busy_timeout = 0")
        try:
            try:
                return cursor.execute(*args)
            except sqlite3.OperationalError as exc:
                if not _is_busy(exc):
                    raise
            deadline = time.monotonic() + self._timeout
            for attempt in itertools.count():
                time.sleep(_LOCK_PAUSES[min(attempt, len(_LOCK_PAUSES) - 1)])
                try:
                    return cursor.execute(*args)
                except sqlite3.OperationalError as exc:
                    if not _is_busy(exc) or time.monotonic() >= deadline:
                        raise
        finally:
            cursor.connection.execute(f"PRAGMA busy_timeout = {round(self._timeout * 1000)}")

    def fetchone(self):
        return self._cursor.fetchone()

    def fetchall(self):
        return self._cursor.fetchall()

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount


@contextlib.contextmanager
def hot_path_cursor(conn=None) -> Iterator[object]:
    """A cursor for a hot-path statement, outside atomic blocks and query logging:
    sqlite3's own on SQLite, psycopg's own (server-side binding) on PostgreSQL; Django's
    everywhere else. `conn`: the default database's connection, when the caller has it
    in hand."""
    # The connection itself, not the `connection` proxy, whose every attribute costs an
    # asgiref Local lookup (4-9 µs on a loaded machine): this reads nine.
    if conn is None:
        conn = connections[DEFAULT_DB_ALIAS]
    vendor = conn.vendor
    if vendor not in ("sqlite", "postgresql") or conn.queries_logged or conn.in_atomic_block:
        with conn.cursor() as cursor:
            yield cursor
        return
    if vendor == "postgresql":
        conn.ensure_connection()
        with conn.wrap_database_errors:
            cursor = psycopg.Cursor(conn.connection)
            try:
                yield cursor
            finally:
                cursor.close()
        return
    conn.close_if_health_check_failed()
    conn.ensure_connection()
    with conn.wrap_database_errors:
        cursor = conn.connection.cursor()
        try:
            yield _SQLiteCursor(cursor, _sqlite_timeout(conn.settings_dict))
        finally:
            cursor.close()


def _sqlite_timeout(settings_dict: dict) -> float:
    # What Django gives sqlite3.connect (the busy handler's limit); sqlite3's default 5 s.
    return float(settings_dict.get("OPTIONS", {}).get("timeout", 5.0))


def write(cursor, sql: str, params=None):
    """Run a statement that takes the write lock on a hot_path_cursor: on SQLite's own
    cursor, waiting for the lock lets the worker's other requests run (see above)."""
    if isinstance(cursor, _SQLiteCursor):
        return cursor.write(sql, params)
    return cursor.execute(sql, params)


@contextlib.contextmanager
def short_transaction() -> Iterator[object]:
    """Yield a cursor inside one transaction: committed at the end, rolled back on error
    (a failed COMMIT too); when even the ROLLBACK fails, the connection is closed.

    On SQLite, BEGIN IMMEDIATE: the write lock is taken up front, as settings'
    transaction_mode does for Django's own transactions (no upgrade deadlock).
    """
    conn = connections[DEFAULT_DB_ALIAS]
    if conn.in_atomic_block or not conn.get_autocommit():
        with transaction.atomic(), conn.cursor() as cursor:
            yield cursor
        return
    abandoned = False
    try:
        with hot_path_cursor(conn) as cursor:
            write(cursor, "BEGIN IMMEDIATE" if conn.vendor == "sqlite" else "BEGIN")
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
            conn.close()


def _rolled_back(cursor) -> bool:
    try:
        cursor.execute("ROLLBACK")
    except Exception:
        return False
    return True
