"""On SQLite, the hot path waits for the write lock without blocking the worker.

SQLite's busy handler sleeps in C, which stops every greenlet of a gevent worker while
another process holds the write lock; the hot path's writes wait in `time.sleep` instead
(gevent's in a worker) and fail as the busy handler would once the timeout has passed.
"""

import sqlite3

import pytest
from django.db import OperationalError, connection

from gatewaysite import short_transaction as st
from logs.sql import insert_row

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "sqlite", reason="SQLite's write lock"),
]


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


def test_a_write_waits_for_the_lock_in_a_sleep_that_lets_other_greenlets_run(
    other_process, monkeypatch
):
    other_process.execute("BEGIN IMMEDIATE")
    pauses = []

    def sleep(seconds):  # the worker's other greenlets would run here
        pauses.append(seconds)
        if len(pauses) == 3:
            other_process.execute("COMMIT")

    monkeypatch.setattr(st.time, "sleep", sleep)
    with st.short_transaction() as cursor:
        cursor.execute("SELECT 1")
    row_id = insert_row({"method": "GET", "path": "/v1/models"})

    assert pauses == list(st._LOCK_PAUSES[:3])
    assert row_id
    assert _busy_timeout() == 20_000  # SQLite's own wait is back for every other statement


def test_a_write_fails_as_the_busy_handler_would_once_the_timeout_has_passed(
    other_process, monkeypatch
):
    other_process.execute("BEGIN IMMEDIATE")
    monkeypatch.setattr(st, "_sqlite_timeout", lambda settings_dict: 0.05)

    with pytest.raises(OperationalError, match="locked"):
        with st.short_transaction():
            pass

    other_process.execute("COMMIT")
    assert _busy_timeout() == 50  # the timeout it was given, as before the write
    monkeypatch.undo()
    with st.short_transaction() as cursor:  # and the connection is fine afterwards
        cursor.execute("SELECT 1")
    assert _busy_timeout() == 20_000
