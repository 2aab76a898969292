"""The limits tests drive the live gateway (testing.live's fixtures) as a client of the proxy."""

import time

import pytest


@pytest.fixture(autouse=True)
def settled_before_teardown(request):
    """Let the gateway settle what it admitted before the test's data is flushed: a settle
    still running meets the flush's TRUNCATE in a deadlock on PostgreSQL."""
    if "transactional_db" not in request.fixturenames:
        yield
        return
    request.getfixturevalue("transactional_db")  # so this runs before its flush
    yield
    from limits.models import Reservation

    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        live = Reservation.objects.filter(expires_at__gt=time.time())
        if not live.exists():
            return
        time.sleep(0.05)
