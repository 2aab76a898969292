"""Fixtures of the proxy's live tests (the gateway, the shared provider and routes: testing/live.py)."""

from __future__ import annotations

import pytest

from testing.fake_provider import FakeProvider


@pytest.fixture(scope="module")
def failing_provider():
    """An upstream that answers every request 503 (one per test module)."""
    fp = FakeProvider(defaults={"x-fake-status": "503"}).start()
    yield fp
    fp.stop()
