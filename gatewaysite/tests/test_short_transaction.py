"""short_transaction never leaves a transaction open on the connection, even when its
COMMIT fails (a full disk, a lock held too long) or the ROLLBACK after it fails too."""

from __future__ import annotations

import contextlib
import uuid

import pytest
from django.db import OperationalError, connection

from gatewaysite import short_transaction as module
from gatewaysite.short_transaction import short_transaction
from limits.models import LimitsVersion

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
    def cursor():
        with real() as inner:
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
