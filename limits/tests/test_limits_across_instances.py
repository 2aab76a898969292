"""Limits hold across two gunicorn instances of two workers each on one database: the
counters are shared, so two instances never admit twice a limit. And a worker killed
mid-request gives its place back within PROXY_MAX_STREAM_SECONDS."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from limits.services import limits_set
from testing.helpers import free_port, redis_test_url, wait_until

CHAT = {"model": "gpt-test", "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture(scope="module", params=["database", "redis"])
def counter_env(request) -> dict[str, str]:
    """Where the counters live: the database (default), or Redis with REDIS_URL."""
    return {"REDIS_URL": redis_test_url()} if request.param == "redis" else {}


@pytest.fixture(scope="module")
def two_instances(start_two_instances, counter_env):
    return start_two_instances(env=counter_env)


@pytest.fixture(autouse=True)
def same_counters_here(settings, counter_env):
    """This process reads spend from where the instances keep it."""
    settings.REDIS_URL = counter_env.get("REDIS_URL", "")


def fire(urls, n, *, key, body: bytes, headers=None, concurrency=50) -> Counter:
    """n POSTs spread over the instances, `concurrency` at once; the statuses counted."""
    session_headers = {
        "Authorization": f"Bearer {key}",
        "Content-Type": "application/json",
        **(headers or {}),
    }

    def one(i):
        url = f"{urls[i % len(urls)]}/v1/chat/completions"
        return requests.post(url, data=body, headers=session_headers, timeout=60).status_code

    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        return Counter(pool.map(one, range(n)))


def test_rpm_limit_admits_exactly_the_limit_across_instances(two_instances, make_route, provider):
    route = make_route(gateway_url=two_instances[0].url, timeout=30)
    limits_set(key=route.key, rpm_limit=50)
    statuses = fire(
        [g.url for g in two_instances], 200, key=route.raw_key, body=json.dumps(CHAT).encode()
    )
    assert statuses == {200: 50, 429: 150}
    assert len(provider.requests) == 50


def test_max_parallel_never_shows_more_at_the_upstream(two_instances, make_route, provider):
    route = make_route(gateway_url=two_instances[0].url, timeout=30)
    limits_set(key=route.key, max_parallel=5)
    statuses = fire(
        [g.url for g in two_instances],
        40,
        key=route.raw_key,
        body=json.dumps({**CHAT, "stream": True}).encode(),
        headers={"x-fake-chunk-delay-ms": "100", "x-fake-chunks": "5"},
        concurrency=40,
    )
    assert set(statuses) <= {200, 429}
    assert statuses[200] >= 5
    assert provider.max_in_flight <= 5
    assert len(provider.requests) == statuses[200]


def test_a_budget_is_never_exceeded_and_mostly_used_under_concurrency(
    two_instances, make_route, provider
):
    """budget = 20 worst cases; each request records all but 5 tokens of its worst case."""
    from limits.selectors import limits_view_for_keys

    route = make_route(gateway_url=two_instances[0].url, timeout=30)
    body = json.dumps({**CHAT, "max_tokens": 40}).encode()
    worst = len(body) + 40
    budget = 20 * worst
    limits_set(key=route.key, budget_tokens=budget, budget_period="total")
    statuses = fire(
        [g.url for g in two_instances],
        100,
        key=route.raw_key,
        body=body,
        headers={"x-fake-prompt-tokens": str(len(body)), "x-fake-completion-tokens": "35"},
        concurrency=100,
    )
    assert set(statuses) <= {200, 429}

    def settled():
        key = type(route.key).objects.select_related("limits_link__limits").get(pk=route.key.pk)
        spend = limits_view_for_keys(keys=[key])[key.pk].spend
        return spend if spend["reserved_tokens"] == 0 else None

    spend = wait_until(settled, timeout=30)
    assert spend["spent_tokens"] == statuses[200] * (worst - 5)
    assert spend["spent_tokens"] <= budget
    assert spend["spent_tokens"] >= 0.9 * budget


def _workers_of(gateway) -> list[int]:
    pid = gateway.proc.pid
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return [int(c) for c in children]


def test_a_killed_workers_place_is_released_within_the_stream_bound(
    start_gateway, make_route, provider, counter_env
):
    bound = 4.0
    gateway = start_gateway(workers=1, env={"PROXY_MAX_STREAM_SECONDS": str(bound), **counter_env})
    route = make_route(gateway_url=gateway.url, timeout=30)
    limits_set(key=route.key, max_parallel=1)
    headers = {"Authorization": f"Bearer {route.raw_key}", "x-fake-scenario": "stall-headers"}
    url = f"{gateway.url}/v1/chat/completions"

    def stalled():
        try:
            requests.post(url, json=CHAT, headers=headers, timeout=30)
        except requests.RequestException:
            pass  # its worker is killed under it

    threading.Thread(target=stalled, daemon=True).start()
    wait_until(lambda: provider.requests, message="the stalled request never went upstream")
    admitted_by = time.monotonic()
    auth = {"Authorization": f"Bearer {route.raw_key}"}
    assert requests.post(url, json=CHAT, headers=auth, timeout=10).status_code == 429

    workers = _workers_of(gateway)
    assert workers
    for pid in workers:
        os.kill(pid, signal.SIGKILL)
    gateway.wait_ready(timeout=60)
    back_at = time.monotonic()

    def admitted():
        return requests.post(url, json=CHAT, headers=auth, timeout=10).status_code == 200

    wait_until(admitted, timeout=bound + 5, interval=0.2)
    # Admitted no later than the bound after the stalled request was, or at once if the
    # new worker took longer than that to boot (a loaded machine), plus polling slack.
    assert time.monotonic() - max(admitted_by + bound, back_at) <= 1.5


def test_with_its_counters_away_a_limited_key_is_refused_never_forwarded(
    start_gateway, make_route, provider, tmp_path, counter_env
):
    from django.db import connection

    route = make_route(timeout=5)
    limits_set(key=route.key, budget_tokens=1_000_000, rpm_limit=1000)
    if counter_env:
        # Redis away, the database up: refused (503), budgets and rate limits alike.
        env = {"REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"}
    elif connection.vendor == "sqlite":
        env = {"DATABASE_URL": f"sqlite:///{tmp_path}"}  # a directory: cannot be opened
    else:
        env = {
            "DATABASE_URL": f"postgres://postgres@127.0.0.1:{free_port()}/gw_nowhere",
            "DB_POOL_TIMEOUT": "1",
        }
    gateway = start_gateway(workers=1, env=env)
    response = requests.post(
        f"{gateway.url}/v1/chat/completions",
        json=CHAT,
        headers={"Authorization": f"Bearer {route.raw_key}"},
        timeout=15,
    )
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "service_unavailable"
    assert provider.requests == []


def test_a_usd_budget_is_never_exceeded_and_mostly_used_under_concurrency(
    two_instances, make_route, provider
):
    """budget_usd=1.00; each request's worst case is $0.05 (40 output tokens at $1250 per
    million, input free) and it records 35 output tokens ($0.04375)."""
    from decimal import Decimal

    from limits.selectors import limits_view_for_keys
    from prices.services import price_create

    route = make_route(gateway_url=two_instances[0].url, timeout=30)
    price_create(actor="tests", model="gpt-test", input=Decimal(0), output=Decimal(1250))
    limits_set(key=route.key, budget_usd=Decimal("1.00"), budget_period="month")
    statuses = fire(
        [g.url for g in two_instances],
        100,
        key=route.raw_key,
        body=json.dumps({**CHAT, "max_tokens": 40}).encode(),
        headers={"x-fake-completion-tokens": "35"},
        concurrency=100,
    )
    assert set(statuses) <= {200, 429}

    def settled():
        key = type(route.key).objects.select_related("limits_link__limits").get(pk=route.key.pk)
        spend = limits_view_for_keys(keys=[key])[key.pk].spend
        return spend if spend["reserved_usd"] == 0 else None

    spend = wait_until(settled, timeout=30)
    assert spend["spent_usd"] == statuses[200] * Decimal("0.04375")
    assert Decimal("0.90") <= spend["spent_usd"] <= Decimal("1.00")


def test_a_price_changed_mid_answer_settles_the_budget_at_the_price_in_force_as_it_ends(
    two_instances, make_route, provider
):
    """The instance prices a request from its own copy of the prices; the row's write
    finds the change, and the row and the key's spend both take the new price."""
    from decimal import Decimal

    from limits.selectors import limits_view_for_keys
    from logs.models import RequestLog
    from prices.services import price_create, price_update
    from testing.helpers import finished_row

    route = make_route(gateway_url=two_instances[1].url, timeout=30)
    price = price_create(actor="tests", model="gpt-test", input=Decimal(0), output=Decimal(1000))
    limits_set(key=route.key, budget_usd=Decimal("10.00"), budget_period="month")
    with requests.post(
        f"{route.gateway_url}/v1/chat/completions",
        json={**CHAT, "max_tokens": 40, "stream": True, "stream_options": {"include_usage": True}},
        headers={
            "Authorization": f"Bearer {route.raw_key}",
            "x-fake-completion-tokens": "35",
            "x-fake-chunks": "20",
            "x-fake-chunk-delay-ms": "50",
        },
        stream=True,
        timeout=30,
    ) as response:
        assert response.status_code == 200
        lines = response.iter_lines()
        next(line for line in lines if line.startswith(b"data: {"))  # admitted, answering
        price_update(actor="tests", price=price, output=Decimal(2000))
        assert [line for line in lines if line][-1] == b"data: [DONE]"
    row = finished_row(response.headers["X-Gateway-Request-ID"])
    assert row.cost_usd == Decimal("0.07")  # 35 tokens at $2000 per million, not $1000

    def settled():
        key = type(route.key).objects.select_related("limits_link__limits").get(pk=route.key.pk)
        spend = limits_view_for_keys(keys=[key])[key.pk].spend
        return spend if spend["reserved_usd"] == 0 else None

    assert wait_until(settled, timeout=15)["spent_usd"] == Decimal("0.07")
    assert RequestLog.objects.count() == 1
