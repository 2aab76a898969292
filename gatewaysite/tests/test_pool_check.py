"""PostgreSQL: the pool lends a connection it got back a moment ago without asking the
server, and never lends one the server has ended (gatewaysite/pgbackend/pool.py)."""

from __future__ import annotations

import time

import psycopg
import pytest
from django.db import connection
from psycopg_pool import ConnectionPool

from gatewaysite.pgbackend import pool as pgpool

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def postgresql():
    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL-only (runs in the PostgreSQL half of the suite)")


@pytest.fixture
def server_checks(monkeypatch):
    """The connections checked with a round trip as they were lent: for each, how long
    it had been back in the pool (None: never lent before, a new one)."""
    calls = []
    real = ConnectionPool.check_connection

    def counted(conn):
        since = getattr(conn, "_gateway_idle_since", None)
        calls.append(None if since is None else time.monotonic() - since)
        return real(conn)

    monkeypatch.setattr(pgpool.ConnectionPool, "check_connection", staticmethod(counted))
    return calls


def _backend_pid() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return cursor.fetchone()[0]


def test_a_connection_given_back_a_moment_ago_is_lent_without_a_round_trip(
    postgresql, server_checks
):
    for _ in range(20):
        _backend_pid()
        connection.close()  # back to the pool, as the proxy does while it waits
    # Only new connections (the pool may add one at any time) were checked with the server.
    assert [idle for idle in server_checks if idle is not None] == []


def test_a_connection_idle_for_long_is_checked_with_the_server(
    postgresql, server_checks, monkeypatch
):
    monkeypatch.setattr(pgpool, "TRUSTED_IDLE_SECONDS", 0.0)
    for _ in range(5):
        _backend_pid()
        connection.close()
    # Every lend asked the server, connections that had been lent before included.
    assert len(server_checks) == 5
    assert [idle for idle in server_checks if idle is not None]


def test_a_connection_the_server_ended_is_replaced_before_it_is_lent(postgresql, server_checks):
    pid = _backend_pid()
    connection.close()
    params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    with psycopg.connect(**params, autocommit=True) as admin:
        ended = [
            row[0]
            for row in admin.execute(
                "SELECT pid, pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        ]
        assert pid in ended
        # Wait until every ended backend is gone (it has sent its goodbye by then).
        deadline = time.monotonic() + 10
        while (
            time.monotonic() < deadline
            and admin.execute(
                "SELECT 1 FROM pg_stat_activity WHERE pid = ANY(%s)", [ended]
            ).fetchone()
        ):
            time.sleep(0.02)
    # The ended connection has the server's goodbye to read: it is checked, found
    # broken, and replaced; the query runs on a new backend.
    assert _backend_pid() != pid
    assert server_checks, "the ended connection was lent without a check"
