"""Fixtures of the gateway-wide tests: an admin API client, and a gunicorn serving the
collected static files (WhiteNoise serves only collected files), for /docs."""

from __future__ import annotations

import pytest

from gatewaysite.tests.browser import collect_static


@pytest.fixture(scope="session")
def docs_gateway(start_gateway, gateway_env, tmp_path_factory):
    """A gunicorn (one worker) after `collectstatic`, as the setup command leaves it."""
    static_root = tmp_path_factory.mktemp("docs-static")
    collect_static(static_root, gateway_env)
    assert (static_root / "staticfiles.json").is_file()
    return start_gateway(workers=1, env={"STATIC_ROOT": str(static_root)})
