"""Cooling holds across two gunicorn instances of two workers each on one database and
one Redis: failures counted on one instance cool the upstream on the other within
REFRESH_SECONDS, and one success ends the cooling on both (upstreams/health.py)."""

from __future__ import annotations

import time

import pytest
import requests

from testing.fake_provider import FakeProvider
from testing.helpers import (
    ACCESS_LOG_WITH_PID,
    finished_row,
    redis_test_url,
    until_every_worker_served,
    wait_until,
)
from upstreams.health import REFRESH_SECONDS

CHAT = {"model": "gpt-test", "messages": [{"role": "user", "content": "hi"}]}
FAILURES_TO_COOL = 3
# Only a success ends the cooling in this test, never the clock.
COOLDOWN_SECONDS = 600
# The bound is REFRESH_SECONDS. The first request that shows a change may come this
# much later on this shared 2-core machine (a worker that gets the CPU late); from
# REFRESH_SECONDS after the change on, every request must show it.
LOADED_MACHINE_MARGIN = 2.0


@pytest.fixture(scope="module")
def two_instances(start_two_instances):
    return start_two_instances(
        env={
            "REDIS_URL": redis_test_url(),
            "UPSTREAM_FAILURES_TO_COOL": str(FAILURES_TO_COOL),
            "UPSTREAM_COOLDOWN_SECONDS": str(COOLDOWN_SECONDS),
        },
        extra_args=ACCESS_LOG_WITH_PID,
    )


@pytest.fixture
def preferred_provider():
    """The preferred upstream's provider: healthy until the test says it fails."""
    fp = FakeProvider().start()
    yield fp
    fp.stop()


def chat(gateway_url: str, raw_key: str, **headers):
    """One chat request on a new connection; its finished log row."""
    response = requests.post(
        f"{gateway_url}/v1/chat/completions",
        json=CHAT,
        headers={"Authorization": f"Bearer {raw_key}", "Connection": "close", **headers},
        timeout=20,
    )
    assert response.status_code == 200, response.text[:300]
    return finished_row(response.headers["x-gateway-request-id"])


def health_seen_by(instance, admin_token: str, *upstreams) -> dict[str, dict]:
    """The `health` GET /admin/upstreams shows for these upstreams, through this instance."""
    response = requests.get(
        f"{instance.url}/admin/upstreams",
        params={"page_size": 200},
        headers={"Authorization": f"Bearer {admin_token}"},
        timeout=20,
    )
    assert response.status_code == 200
    names = {u.name for u in upstreams}
    return {
        item["name"]: item["health"] for item in response.json()["items"] if item["name"] in names
    }


def test_cooling_reaches_the_other_instance_within_the_bound_and_one_success_ends_it_on_both(
    two_instances,
    transactional_db,
    provider,
    preferred_provider,
    make_upstream,
    make_key,
    admin_token,
):
    a, b = two_instances
    preferred = make_upstream(name="preferred", base_url=preferred_provider.base_url, priority=0)
    fallback = make_upstream(name="fallback", base_url=provider.base_url, priority=1)
    _, raw = make_key(upstreams=[preferred, fallback])

    def goes_to(instance, upstream):
        def send():
            row = chat(instance.url, raw)
            assert (row.upstream_id, row.attempts) == (upstream.pk, 1)

        return send

    # Every worker of both instances has routed (and read the health view) while all is well.
    for instance in (a, b):
        until_every_worker_served(instance, 2, goes_to(instance, preferred))

    # The preferred upstream starts failing; only instance A sees the failures.
    preferred_provider.clear()
    preferred_provider.defaults["x-fake-status"] = "503"
    for _ in range(FAILURES_TO_COOL):
        row = chat(a.url, raw)
        assert (row.upstream_id, row.attempts) == (fallback.pk, 2)
    cooled_at = time.monotonic()
    assert len(preferred_provider.requests) == FAILURES_TO_COOL

    seen_by_a = health_seen_by(a, admin_token, preferred, fallback)
    assert seen_by_a["preferred"]["state"] == "cooling"
    assert seen_by_a["preferred"]["consecutive_failures"] == FAILURES_TO_COOL
    assert seen_by_a["preferred"]["last_failure"]["reason"] == "503"
    assert seen_by_a["fallback"]["state"] == "ok"
    assert health_seen_by(b, admin_token, preferred, fallback) == seen_by_a

    # Within the bound, instance B sends the request to the fallback first. Meanwhile the
    # preferred one answers 429 (its limit, which fails over but never counts towards
    # cooling), so a B worker that still tried it would learn nothing from that: B can
    # only learn of the cooling from the database.
    preferred_provider.defaults["x-fake-status"] = "429"

    def b_routes_around() -> bool:
        row = chat(b.url, raw)
        return (row.upstream_id, row.attempts) == (fallback.pk, 1)

    bound = REFRESH_SECONDS + LOADED_MACHINE_MARGIN
    wait_until(
        b_routes_around,
        timeout=max(0.0, cooled_at + bound - time.monotonic()),
        interval=0.05,
        message=f"instance B still tried the cooling upstream {bound} s after it cooled",
    )
    # A request that starts REFRESH_SECONDS after the cooling meets a view read after it,
    # on any worker: from then on no worker of either instance tries the cooling upstream.
    time.sleep(max(0.0, cooled_at + REFRESH_SECONDS - time.monotonic()))
    tried = len(preferred_provider.requests)
    for instance in (b, a):
        until_every_worker_served(instance, 2, goes_to(instance, fallback))
    assert len(preferred_provider.requests) == tried
    still = health_seen_by(a, admin_token, preferred)["preferred"]
    assert (still["state"], still["consecutive_failures"]) == ("cooling", FAILURES_TO_COOL)

    # The preferred upstream recovers; one success through A ends the cooling for both.
    preferred_provider.defaults.clear()
    row = chat(a.url, raw, **{"X-Upstream-Name": "preferred"})
    ended_at = time.monotonic()
    assert (row.upstream_id, row.attempts) == (preferred.pk, 1)
    seen_by_a = health_seen_by(a, admin_token, preferred, fallback)
    assert seen_by_a["preferred"]["state"] == "ok"
    assert seen_by_a["preferred"]["consecutive_failures"] == 0
    assert seen_by_a["preferred"]["cooling_until"] is None
    assert health_seen_by(b, admin_token, preferred, fallback) == seen_by_a

    def b_prefers_it_again() -> bool:
        row = chat(b.url, raw)
        return row.upstream_id == preferred.pk

    wait_until(
        b_prefers_it_again,
        timeout=max(0.0, ended_at + bound - time.monotonic()),
        interval=0.05,
        message=f"instance B still routed around the recovered upstream after {bound} s",
    )
    time.sleep(max(0.0, ended_at + REFRESH_SECONDS - time.monotonic()))
    for instance in (b, a):
        until_every_worker_served(instance, 2, goes_to(instance, preferred))
