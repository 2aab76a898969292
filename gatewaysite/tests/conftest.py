"""Fixtures of the gateway-wide tests: request log rows, and a gunicorn serving the
collected static files (WhiteNoise serves only collected files), for /docs."""

from __future__ import annotations

import pytest

from testing.helpers import log_row_create


@pytest.fixture(scope="session")
def docs_gateway(start_gateway, collected_static):
    """A gunicorn (one worker) after `collectstatic`, as the setup command leaves it."""
    return start_gateway(workers=1, env={"STATIC_ROOT": str(collected_static)})


@pytest.fixture
def make_log_row(db):
    """make_log_row(at=None, *, status=200, key=, upstream=, model=, cost=, **fields) -> a
    finished RequestLog row written directly, as in the logs app's tests."""
    return log_row_create
