"""Failover and cooling through the live gateway, with several fake upstreams: one that
refuses connections, one that answers 503 (or 429), one slow, and a healthy one."""

from __future__ import annotations

import time

import openai
import pytest
import requests

from gatewaysite.tests.admin_api import admin_client
from testing.fake_provider import FakeProvider
from testing.helpers import finished_row, free_port, wait_until

CHAT = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture(scope="module")
def limited_provider():
    fp = FakeProvider(defaults={"x-fake-status": "429"}).start()
    yield fp
    fp.stop()


@pytest.fixture(scope="module")
def slow_provider():
    # Five chunks 400 ms apart: a JSON answer's headers come after 2 s.
    fp = FakeProvider(defaults={"x-fake-chunks": "5", "x-fake-chunk-delay-ms": "400"}).start()
    yield fp
    fp.stop()


@pytest.fixture
def fakes(failing_provider, limited_provider, slow_provider):
    for fp in (failing_provider, limited_provider, slow_provider):
        fp.clear()
    return {"503": failing_provider, "429": limited_provider, "slow": slow_provider}


def refused_url() -> str:
    return f"http://127.0.0.1:{free_port()}/v1"


def chat(gateway_url: str, raw_key: str, **headers) -> requests.Response:
    return requests.post(
        f"{gateway_url}/v1/chat/completions",
        json=CHAT,
        headers={"Authorization": f"Bearer {raw_key}", **headers},
        timeout=20,
    )


def test_fails_over_to_the_next_upstream_and_the_row_says_so(
    gateway, provider, fakes, make_upstream, make_key
):
    a = make_upstream(name="openai-a", base_url=fakes["503"].base_url, priority=0)
    b = make_upstream(name="openai-b", base_url=refused_url(), priority=1)
    c = make_upstream(name="openai-c", base_url=provider.base_url, priority=2)
    _, raw = make_key(upstreams=[c, b, a])
    client = openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=raw, max_retries=0, timeout=20)
    reply = client.chat.completions.with_raw_response.create(**CHAT)
    assert reply.status_code == 200 and reply.parse().choices[0].message.content
    assert len(fakes["503"].requests) == 1 and len(provider.requests) == 1
    row = finished_row(reply.headers["x-gateway-request-id"])
    assert (row.status_code, row.upstream_id, row.attempts) == (200, c.pk, 3)
    assert row.error == "openai-a: 503; openai-b: connection refused"


def test_every_attempt_failing_gives_the_last_answer_received_unchanged(
    gateway, fakes, make_upstream, make_key
):
    a = make_upstream(name="fail-429", base_url=fakes["429"].base_url, priority=0)
    b = make_upstream(name="fail-503", base_url=fakes["503"].base_url, priority=1)
    c = make_upstream(name="fail-refused", base_url=refused_url(), priority=2)
    _, raw = make_key(upstreams=[a, b, c])
    response = chat(gateway.url, raw)
    assert response.status_code == 503
    assert response.json()["error"]["message"] == "Fake error 503"  # the upstream's own body
    row = finished_row(response.headers["x-gateway-request-id"])
    assert (row.status_code, row.upstream_id, row.attempts) == (503, b.pk, 3)
    assert row.error.startswith("fail-429: 429; fail-503: 503; fail-refused: connection refused")


def test_no_answer_at_all_is_the_gateways_502_listing_the_attempts(
    gateway, make_upstream, make_key
):
    a = make_upstream(name="gone-a", base_url=refused_url(), priority=0)
    b = make_upstream(name="gone-b", base_url=refused_url(), priority=1)
    _, raw = make_key(upstreams=[a, b])
    response = chat(gateway.url, raw)
    assert response.status_code == 502
    assert response.json()["error"]["code"] == "bad_gateway"
    assert (
        "gone-a: connection refused; gone-b: connection refused"
        in (response.json()["error"]["message"])
    )
    assert "127.0.0.1" not in response.text
    row = finished_row(response.headers["x-gateway-request-id"])
    assert (row.status_code, row.upstream_id, row.attempts) == (502, b.pk, 2)


def test_at_most_proxy_max_attempts_upstreams_are_tried(gateway, fakes, make_upstream, make_key):
    ups = [
        make_upstream(name=f"many-{i}", base_url=fakes["503"].base_url, priority=i)
        for i in range(4)
    ]
    _, raw = make_key(upstreams=ups)
    response = chat(gateway.url, raw)
    assert response.status_code == 503
    assert len(fakes["503"].requests) == 3  # PROXY_MAX_ATTEMPTS, each upstream once
    assert finished_row(response.headers["x-gateway-request-id"]).attempts == 3


def test_a_pinned_upstream_is_never_failed_over(gateway, provider, fakes, make_upstream, make_key):
    a = make_upstream(name="pinned-503", base_url=fakes["503"].base_url, priority=0)
    b = make_upstream(name="pinned-ok", base_url=provider.base_url, priority=1)
    _, raw = make_key(upstreams=[a, b])
    response = chat(gateway.url, raw, **{"X-Upstream-Name": "pinned-503"})
    assert response.status_code == 503
    assert provider.requests == []
    assert finished_row(response.headers["x-gateway-request-id"]).attempts == 1


def test_no_failover_after_a_timeout(gateway, provider, fakes, make_upstream, make_key):
    slow = make_upstream(name="slow", base_url=fakes["slow"].base_url, priority=0, timeout=0.5)
    ok = make_upstream(name="after-slow", base_url=provider.base_url, priority=1)
    _, raw = make_key(upstreams=[slow, ok])
    response = chat(gateway.url, raw)
    assert response.status_code == 504
    assert response.json()["error"]["code"] == "gateway_timeout"
    assert provider.requests == []  # the slow upstream may still be working on it
    row = finished_row(response.headers["x-gateway-request-id"])
    assert (row.status_code, row.upstream_id, row.attempts) == (504, slow.pk, 1)


def test_a_stream_fails_over_before_its_first_byte(
    gateway, provider, fakes, make_upstream, make_key
):
    a = make_upstream(name="stream-503", base_url=fakes["503"].base_url, priority=0)
    b = make_upstream(name="stream-ok", base_url=provider.base_url, priority=1)
    _, raw = make_key(upstreams=[a, b])
    client = openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=raw, max_retries=0, timeout=20)
    chunks = list(client.chat.completions.create(**CHAT, stream=True))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    (received,) = provider.requests
    assert b'"include_usage":true' in received.body  # stream usage asked on this attempt too


@pytest.fixture(scope="module")
def cooling_gateway(start_gateway):
    """Its own gunicorn: cooling after 2 failures in a row, for 3 seconds."""
    return start_gateway(
        workers=2, env={"UPSTREAM_FAILURES_TO_COOL": "2", "UPSTREAM_COOLDOWN_SECONDS": "3"}
    )


@pytest.fixture
def flaky_provider():
    fp = FakeProvider(defaults={"x-fake-status": "500"}).start()
    yield fp
    fp.stop()


def test_cooling_after_failures_in_a_row_shared_and_ended_by_one_success(
    cooling_gateway, transactional_db, provider, flaky_provider, make_upstream, make_key, settings
):
    api = admin_client(settings.ADMIN_TOKEN)
    flaky = make_upstream(name="flaky", base_url=flaky_provider.base_url, priority=0)
    steady = make_upstream(name="steady", base_url=provider.base_url, priority=1)
    _, raw = make_key(upstreams=[flaky, steady])

    for _ in range(2):
        response = chat(cooling_gateway.url, raw, Connection="close")
        assert response.status_code == 200
        assert finished_row(response.headers["x-gateway-request-id"]).attempts == 2
    health = api.get(f"/admin/upstreams/{flaky.pk}").json()["health"]
    assert health["state"] == "cooling"
    assert health["consecutive_failures"] == 2
    assert health["last_failure"]["reason"] == "500"
    assert api.get(f"/admin/upstreams/{steady.pk}").json()["health"]["state"] == "ok"
    assert api.get(f"/admin/upstreams/{flaky.pk}").json()["is_active"] is True  # never deactivated

    # Every worker routes around it (each sees the shared state within a second).
    time.sleep(1.1)
    flaky_provider.clear()
    for _ in range(6):
        response = chat(cooling_gateway.url, raw, Connection="close")
        row = finished_row(response.headers["x-gateway-request-id"])
        assert (row.upstream_id, row.attempts) == (steady.pk, 1)
    assert flaky_provider.requests == []

    # After the cooldown the next request tries it again; one success ends the cooling.
    flaky_provider.defaults.clear()
    wait_until(
        lambda: api.get(f"/admin/upstreams/{flaky.pk}").json()["health"]["state"] == "ok",
        timeout=5,
    )
    time.sleep(1.1)  # past the workers' view of the cooling too
    response = chat(cooling_gateway.url, raw)
    assert finished_row(response.headers["x-gateway-request-id"]).upstream_id == flaky.pk
    health = api.get(f"/admin/upstreams/{flaky.pk}").json()["health"]
    assert (health["state"], health["consecutive_failures"]) == ("ok", 0)


def test_a_429_fails_over_but_never_cools(
    cooling_gateway, transactional_db, provider, limited_provider, make_upstream, make_key, settings
):
    api = admin_client(settings.ADMIN_TOKEN)
    limited = make_upstream(name="limited", base_url=limited_provider.base_url, priority=0)
    steady = make_upstream(name="steady-2", base_url=provider.base_url, priority=1)
    _, raw = make_key(upstreams=[limited, steady])
    for _ in range(4):
        response = chat(cooling_gateway.url, raw)
        assert response.status_code == 200
        assert finished_row(response.headers["x-gateway-request-id"]).attempts == 2
    health = api.get(f"/admin/upstreams/{limited.pk}").json()["health"]
    assert (health["state"], health["consecutive_failures"]) == ("ok", 0)
