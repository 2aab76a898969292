"""Behaviour across worker processes, and without a database."""

from __future__ import annotations

import time

import pytest
import requests

from keys.services import key_revoke
from testing.helpers import (
    ACCESS_LOG_WITH_PID,
    free_port,
    redis_test_url,
    until_every_worker_served,
)

CHAT_BODY = {"model": "gpt-test", "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture(scope="module")
def three_workers(start_gateway):
    return start_gateway(workers=3, extra_args=ACCESS_LOG_WITH_PID)


def test_revocation_reaches_every_warm_worker_at_once(three_workers, make_route, provider):
    route = make_route(gateway_url=three_workers.url)
    headers = {"Authorization": f"Bearer {route.raw_key}"}
    url = f"{three_workers.url}/v1/chat/completions"

    def served_ok():
        assert requests.post(url, json=CHAT_BODY, headers=headers, timeout=10).status_code == 200

    # Warm every worker's key cache: each call opens a new connection, and the
    # kernel hands connections to all three workers.
    until_every_worker_served(three_workers, 3, served_ok)
    served = len(provider.requests)

    key_revoke(
        actor="tests", key=route.key
    )  # what the admin API, the admin site and the command call

    statuses = [
        requests.post(url, json=CHAT_BODY, headers=headers, timeout=10).status_code
        for _ in range(60)
    ]
    assert statuses == [401] * 60
    assert len(provider.requests) == served  # nothing more went upstream

    # ...and every worker refuses: the kernel may hand 60 connections to only two of
    # them, so keep asking (each answer must be a 401) until all three have refused.
    def refused():
        assert requests.post(url, json=CHAT_BODY, headers=headers, timeout=10).status_code == 401

    until_every_worker_served(three_workers, 3, refused, status=401)
    assert len(provider.requests) == served


def test_revocation_reaches_two_instances_sharing_the_database_and_redis_at_once(
    start_two_instances, make_route, provider
):
    instances = start_two_instances(
        env={"REDIS_URL": redis_test_url()}, extra_args=ACCESS_LOG_WITH_PID
    )
    route = make_route(gateway_url=instances[0].url)
    headers = {"Authorization": f"Bearer {route.raw_key}"}
    urls = [f"{instance.url}/v1/chat/completions" for instance in instances]
    for instance, url in zip(instances, urls, strict=True):  # warm both workers of both

        def served_ok(url=url):
            response = requests.post(url, json=CHAT_BODY, headers=headers, timeout=10)
            assert response.status_code == 200

        until_every_worker_served(instance, 2, served_ok)
    served = len(provider.requests)

    key_revoke(actor="tests", key=route.key)

    statuses = [
        requests.post(urls[i % 2], json=CHAT_BODY, headers=headers, timeout=10).status_code
        for i in range(40)
    ]
    assert statuses == [401] * 40
    assert len(provider.requests) == served


@pytest.fixture
def database_down_env(tmp_path):
    from django.db import connection

    if connection.vendor == "sqlite":
        return {"DATABASE_URL": f"sqlite:///{tmp_path}"}  # a directory: cannot be opened
    return {
        "DATABASE_URL": f"postgres://postgres@127.0.0.1:{free_port()}/gw_nowhere",
        "DB_POOL_TIMEOUT": "1",
    }


def test_database_down_is_a_quick_503_in_the_callers_dialect(start_gateway, database_down_env):
    gateway = start_gateway(workers=1, env=database_down_env)
    key = {"Authorization": "Bearer sk-auto-" + "B" * 43}

    started = time.monotonic()
    response = requests.post(
        f"{gateway.url}/v1/chat/completions", json=CHAT_BODY, headers=key, timeout=15
    )
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "service_unavailable"
    assert response.headers["x-gateway-request-id"]

    response = requests.post(f"{gateway.url}/v1/messages", json={}, headers=key, timeout=15)
    assert response.status_code == 503
    assert response.json()["error"] == {
        "type": "api_error",
        "code": "service_unavailable",
        "message": "The gateway's database is unavailable",
    }
    assert time.monotonic() - started < 8
    assert requests.get(f"{gateway.url}/readyz", timeout=15).status_code == 503
