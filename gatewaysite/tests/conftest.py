"""Fixtures of the gateway-wide tests: request log rows, and a gunicorn serving the
collected static files (WhiteNoise serves only collected files), for /docs."""

from __future__ import annotations

import pytest

from gatewaysite.tests.browser import collect_static
from testing.helpers import log_row_create


@pytest.fixture(scope="session")
def docs_gateway(start_gateway, gateway_env, tmp_path_factory):
    """A gunicorn (one worker) after `collectstatic`, as the setup command leaves it."""
    static_root = tmp_path_factory.mktemp("docs-static")
    collect_static(static_root, gateway_env)
    assert (static_root / "staticfiles.json").is_file()
    return start_gateway(workers=1, env={"STATIC_ROOT": str(static_root)})


@pytest.fixture
def make_log_row(db):
    """make_log_row(at=None, *, status=200, key=, upstream=, model=, cost=, **fields) -> a
    finished RequestLog row written directly, as in the logs app's tests."""
    return log_row_create
