"""PostgreSQL: a request that waits on the database does not stop the other requests of
its gunicorn worker (gatewaysite/pgbackend/cooperative.py).

psycopg picks how it waits for the server when first imported, and gunicorn's master
imports it before a worker patches `select` for gevent: every round trip then waited in
C, holding the whole worker. Here one worker serves a limited key whose limits row the
test holds locked, so that request waits in admission; a second request to the same
worker must still be answered meanwhile."""

from __future__ import annotations

import threading
import time

import psycopg
import pytest
import requests
from django.db import connection

from limits.services import limits_set
from testing.helpers import wait_until

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def postgresql():
    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL-only (runs in the PostgreSQL half of the suite)")


@pytest.fixture(scope="module")
def one_worker(start_gateway):
    return start_gateway(workers=1)


def _connect() -> psycopg.Connection:
    params = connection.settings_dict
    return psycopg.connect(
        dbname=params["NAME"],
        user=params["USER"],
        password=params["PASSWORD"] or None,
        host=params["HOST"],
        port=params["PORT"] or None,
        autocommit=False,
    )


def _waiting_on_a_lock(conn: psycopg.Connection) -> int:
    with conn.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        return cursor.fetchone()[0]


def test_a_request_waiting_on_a_row_lock_does_not_stop_its_worker(
    postgresql, one_worker, make_route
):
    limited = make_route(gateway_url=one_worker.url, timeout=30)
    limits_set(key=limited.key, rpm_limit=1000)
    other = make_route(gateway_url=one_worker.url, timeout=30)
    body = {"model": "gpt-test", "messages": [{"role": "user", "content": "hi"}]}

    answers: list[int] = []
    waiting = threading.Thread(
        target=lambda: answers.append(
            requests.post(
                f"{one_worker.url}/v1/chat/completions",
                json=body,
                headers={"Authorization": f"Bearer {limited.raw_key}"},
                timeout=30,
            ).status_code
        )
    )
    holder, watcher = _connect(), _connect()
    watcher.autocommit = True
    try:
        with holder.cursor() as cursor:
            cursor.execute("SELECT 1 FROM limits_keylimits FOR UPDATE")
        waiting.start()
        wait_until(
            lambda: _waiting_on_a_lock(watcher),
            message="the limited request never reached its lock",
        )

        # The worker's only process is inside that request's round trip; this one must
        # be served anyway, well before the lock goes.
        started = time.monotonic()
        meanwhile = requests.post(
            f"{one_worker.url}/v1/chat/completions",
            json=body,
            headers={"Authorization": f"Bearer {other.raw_key}"},
            timeout=5,
        )
        assert meanwhile.status_code == 200
        assert time.monotonic() - started < 5
        assert answers == []  # the limited request still waits
    finally:
        holder.rollback()
        holder.close()
        watcher.close()
    waiting.join(timeout=30)
    assert answers == [200]
