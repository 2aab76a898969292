"""Fixtures of the proxy's live tests (the gateway, the shared provider and routes: testing/live.py)."""

from __future__ import annotations

import pytest
from django.test import Client

from testing.fake_provider import FakeProvider


@pytest.fixture
def client(settings):
    """Django's test client, in process, as the gateway's own host (ALLOWED_HOSTS)."""
    settings.ALLOWED_HOSTS = ["127.0.0.1"]
    return Client(SERVER_NAME="127.0.0.1")


@pytest.fixture(scope="module")
def failing_provider():
    """An upstream that answers every request 503 (one per test module)."""
    fp = FakeProvider(defaults={"x-fake-status": "503"}).start()
    yield fp
    fp.stop()
