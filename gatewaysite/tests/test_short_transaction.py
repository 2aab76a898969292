"""short_transaction never leaves a transaction open on the connection, even when its
COMMIT fails (a full disk, a lock held too long) or the ROLLBACK after it fails too.

On SQLite, the hot path waits for the write lock without blocking the worker: SQLite's
busy handler sleeps in C, which stops every greenlet of a gevent worker while another
process holds the write lock; the hot path's writes wait in `time.sleep` instead
(gevent's in a worker) and fail as the busy handler would once the timeout has passed.
"""

from __future__ import annotations

import contextlib
import sqlite3
import uuid

import pytest
from django.db import OperationalError, connection

from gatewaysite import short_transaction as module
from gatewaysite.short_transaction import short_transaction
from limits.models import LimitsVersion
from logs.sql import insert_row

pytestmark = pytest.mark.django_db(transaction=True)


def failing(monkeypatch, *statements: str):
    """Make these statements fail once each, as the database would."""
    real = module.hot_path_cursor
    left = set(statements)

    class Cursor:
        def __init__(self, cursor):
            self._cursor = cursor

        def execute(self, sql, params=None):
            if sql in left:
                left.discard(sql)
                raise OperationalError(f"{sql} failed: database or disk is full")
            return self._cursor.execute(sql, params)

    @contextlib.contextmanager
    def cursor(*args):
        with real(*args) as inner:
            yield Cursor(inner)

    monkeypatch.setattr(module, "hot_path_cursor", cursor)


def in_transaction() -> bool:
    raw = connection.connection
    if raw is None:
        return False
    if connection.vendor == "sqlite":
        return raw.in_transaction
    from psycopg.pq import TransactionStatus

    return raw.info.transaction_status != TransactionStatus.IDLE


def insert(cursor) -> None:
    table = connection.ops.quote_name(LimitsVersion._meta.db_table)
    version = LimitsVersion._meta.get_field("version").get_db_prep_save(uuid.uuid4(), connection)
    cursor.execute(f"INSERT INTO {table} (id, version) VALUES (%s, %s)", [99, version])  # noqa: S608


def rows() -> int:
    return LimitsVersion.objects.filter(pk=99).count()


def test_a_failed_commit_is_rolled_back(monkeypatch):
    failing(monkeypatch, "COMMIT")
    with pytest.raises(OperationalError, match="COMMIT failed"), short_transaction() as cursor:
        insert(cursor)
    assert not in_transaction()
    assert rows() == 0
    with short_transaction() as cursor:  # the next one begins and commits as usual
        insert(cursor)
    assert rows() == 1


def test_when_the_rollback_fails_too_the_connection_is_closed(monkeypatch):
    failing(monkeypatch, "COMMIT", "ROLLBACK")
    with pytest.raises(OperationalError, match="COMMIT failed"), short_transaction() as cursor:
        insert(cursor)
    assert connection.connection is None  # closed: its transaction ended with it
    assert rows() == 0
    with short_transaction() as cursor:
        insert(cursor)
    assert rows() == 1


# --- SQLite's write lock, waited for in gevent's sleep -----------------------------------

sqlite_only = pytest.mark.skipif(connection.vendor != "sqlite", reason="SQLite's write lock")


@pytest.fixture
def other_process():
    """Another connection to the same file, as another worker would hold it."""
    other = sqlite3.connect(connection.settings_dict["NAME"], isolation_level=None, timeout=0)
    yield other
    if other.in_transaction:
        other.execute("ROLLBACK")
    other.close()


def _busy_timeout() -> int:
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA busy_timeout")
        return cursor.fetchone()[0]


@sqlite_only
def test_a_write_waits_for_the_lock_in_a_sleep_that_lets_other_greenlets_run(
    other_process, monkeypatch
):
    other_process.execute("BEGIN IMMEDIATE")
    pauses = []

    def sleep(seconds):  # the worker's other greenlets would run here
        pauses.append(seconds)
        if len(pauses) == 3:
            other_process.execute("COMMIT")

    monkeypatch.setattr(module.time, "sleep", sleep)
    with short_transaction() as cursor:
        cursor.execute("SELECT 1")
    row_id = insert_row({"method": "GET", "path": "/v1/models"})

    assert pauses == list(module._LOCK_PAUSES[:3])
    assert row_id
    assert _busy_timeout() == 20_000  # SQLite's own wait is back for every other statement


@sqlite_only
def test_a_write_fails_as_the_busy_handler_would_once_the_timeout_has_passed(
    other_process, monkeypatch
):
    other_process.execute("BEGIN IMMEDIATE")
    monkeypatch.setattr(module, "_sqlite_timeout", lambda settings_dict: 0.05)

    with pytest.raises(OperationalError, match="locked"):
        with short_transaction():
            pass

    other_process.execute("COMMIT")
    assert _busy_timeout() == 50  # the timeout it was given, as before the write
    monkeypatch.undo()
    with short_transaction() as cursor:  # and the connection is fine afterwards
        cursor.execute("SELECT 1")
    assert _busy_timeout() == 20_000
