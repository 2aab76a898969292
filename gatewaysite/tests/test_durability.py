"""PostgreSQL commits: log writes don't wait for the disk; changes to keys and upstreams do."""

import pytest
from django.db import connection, transaction

from keys.models import KeyringVersion

pytestmark = pytest.mark.django_db(transaction=True)


def _synchronous_commit() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SHOW synchronous_commit")
        return cursor.fetchone()[0]


def test_changes_to_keys_commit_synchronously_and_log_writes_do_not():
    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL-only: SQLite's WAL with synchronous=NORMAL is set per file")
    assert _synchronous_commit() == "off"
    with transaction.atomic():
        KeyringVersion.bump()
        assert _synchronous_commit() == "on"
    assert _synchronous_commit() == "off"


def test_sqlite_runs_in_wal_with_normal_sync():
    if connection.vendor != "sqlite":
        pytest.skip("SQLite-only")
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA journal_mode")
        assert cursor.fetchone()[0] == "wal"
        cursor.execute("PRAGMA synchronous")
        assert cursor.fetchone()[0] == 1  # NORMAL
