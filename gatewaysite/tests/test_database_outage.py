"""PostgreSQL away: after the first failure every request fails fast, /readyz answers
within 2 s, the admin site says the database is unavailable; then all serves again."""

from __future__ import annotations

import os
import time

import pytest
import requests
from django.db import connection

from proxy.tests.tcp_relay import TcpRelay
from proxy.tests.test_faults import CHAT, gateway_admin_token
from testing.helpers import (
    postgres_database_create,
    postgres_database_drop,
    postgres_server,
    postgres_url,
    wait_until,
)

pytestmark = pytest.mark.django_db(transaction=True)


def _timed(call):
    started = time.monotonic()
    response = call()
    return response, time.monotonic() - started


def test_with_postgres_away_requests_fail_fast_and_say_why(start_gateway, provider):
    if connection.vendor != "postgresql":
        pytest.skip("a PostgreSQL outage")
    name = f"gw_outage_{os.getpid()}"
    postgres_database_create(name)
    server = postgres_server()
    relay = TcpRelay(target_host=server["host"], target_port=server["port"]).start()
    gateway = start_gateway(workers=1, env={"DATABASE_URL": postgres_url(name, port=relay.port)})
    admin = {"Authorization": f"Bearer {gateway_admin_token()}"}
    try:
        up = requests.post(
            f"{gateway.url}/admin/upstreams",
            json={
                "name": "fake",
                "provider": "openai",
                "base_url": provider.base_url,
                "api_key": "sk-outage-upstream-secret-1",
            },
            headers=admin,
            timeout=10,
        )
        key = requests.post(
            f"{gateway.url}/admin/keys",
            json={"name": "outage", "upstream_ids": [up.json()["id"]]},
            headers=admin,
            timeout=10,
        )
        auth = {"Authorization": f"Bearer {key.json()['key']}"}

        def chat():
            return requests.post(
                f"{gateway.url}/v1/chat/completions", json=CHAT, headers=auth, timeout=20
            )

        assert chat().status_code == 200

        relay.cut()
        first, _ = _timed(chat)  # may wait for the pool once
        assert first.status_code == 503
        for _ in range(5):
            down, seconds = _timed(chat)
            assert down.status_code == 503
            assert down.json()["error"]["code"] == "service_unavailable"
            assert seconds < 0.5
        ready, seconds = _timed(lambda: requests.get(f"{gateway.url}/readyz", timeout=10))
        assert ready.status_code == 503 and seconds < 2
        # The CSRF check comes first and needs no database; with a session it would
        # go on to the sign-in. A page that reads the database:
        page, seconds = _timed(
            lambda: requests.get(
                f"{gateway.url}/django-admin/",
                cookies={"sessionid": "x" * 32},
                timeout=10,
            )
        )
        assert page.status_code == 503 and seconds < 1
        assert "database is unavailable" in page.text

        relay.restore()

        def recovered() -> bool:
            return requests.get(f"{gateway.url}/readyz", timeout=10).status_code == 200 and all(
                chat().status_code == 200 for _ in range(5)
            )

        wait_until(recovered, timeout=45, interval=0.5, message="no recovery")
        assert "Traceback" not in gateway.output()
    finally:
        gateway.stop()
        relay.stop()
        postgres_database_drop(name)
