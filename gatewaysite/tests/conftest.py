"""Fixtures of the gateway-wide tests: an admin API client, and static files collected
once for a gunicorn that must serve /docs (WhiteNoise serves only collected files)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from gatewaysite.tests.admin_api import admin_client

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def api(admin_token):
    return admin_client(admin_token)


@pytest.fixture(scope="session")
def collected_static(tmp_path_factory, gateway_env) -> Path:
    """A STATIC_ROOT filled by `manage.py collectstatic`, as the setup command does."""
    root = tmp_path_factory.mktemp("staticfiles")
    subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--noinput", "-v", "0"],
        cwd=ROOT,
        env={**gateway_env, "STATIC_ROOT": str(root)},
        check=True,
        timeout=300,
    )
    assert (root / "staticfiles.json").is_file()
    return root


@pytest.fixture(scope="session")
def docs_gateway(start_gateway, collected_static):
    """A gunicorn (one worker) serving the collected static files, for /docs."""
    return start_gateway(workers=1, env={"STATIC_ROOT": str(collected_static)})
