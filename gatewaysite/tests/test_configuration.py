"""Configuration mistakes a new operator makes: each a clear exit-2 message, never a
secret on the screen; and the settings for running behind a TLS-terminating proxy."""

from __future__ import annotations

import logging
import os
import secrets
import subprocess
import sys

import environ
import pytest
from cryptography.fernet import Fernet

from testing.helpers import ROOT


def _env(tmp_path, **overrides) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("ENCRYPTION_KEY_FILE", "DATABASE_URL") and not k.startswith("PYTEST")
    }
    env.update(
        SECRET_KEY=secrets.token_urlsafe(50),
        ENCRYPTION_KEY=Fernet.generate_key().decode(),
        ADMIN_TOKEN="t" * 40,
        DATA_DIR=str(tmp_path),
        DJANGO_SETTINGS_MODULE="gatewaysite.settings",
    )
    env.update(overrides)
    return env


def _check(env, *args) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", "check", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(
    "url", ["/var/lib/gateway/gateway.sqlite3", "sqlite:data.sqlite3", "sqlite://", "mysql://x/y"]
)
def test_a_database_url_that_means_nothing_clear_is_an_exit_2_error(tmp_path, url):
    result = _check(_env(tmp_path, DATABASE_URL=url))
    assert result.returncode == 2, result.stderr
    assert "DATABASE_URL" in result.stderr
    assert "sqlite:////" in result.stderr  # says what to write instead
    assert "Traceback" not in result.stderr


def test_an_unreadable_key_file_is_named(tmp_path):
    missing = tmp_path / "no-such-key-file"
    result = _check(_env(tmp_path, ENCRYPTION_KEY_FILE=str(missing)))
    assert result.returncode == 2
    assert str(missing) in result.stderr


def test_an_invalid_env_line_never_prints_its_value(tmp_path, caplog):
    key = Fernet.generate_key().decode()
    dotenv = tmp_path / ".env"
    dotenv.write_text(f"ENCRYPTION_KEY = {key}\n")
    with caplog.at_level(logging.WARNING):
        environ.Env.read_env(dotenv)
    assert "ENCRYPTION_KEY" in caplog.text
    assert key not in caplog.text and key[:8] not in caplog.text


def test_check_deploy_is_clean_behind_a_tls_terminating_proxy(tmp_path):
    env = _env(
        tmp_path,
        SECURE_COOKIES="true",
        SECURE_PROXY_SSL_HEADER="X-Forwarded-Proto",
        SECURE_SSL_REDIRECT="true",
        SECURE_HSTS_SECONDS="31536000",
        SECURE_HSTS_INCLUDE_SUBDOMAINS="true",
        SECURE_HSTS_PRELOAD="true",
    )
    result = _check(env, "--deploy", "--fail-level", "WARNING")
    assert result.returncode == 0, result.stderr


def test_the_admin_session_cookie_stays_with_the_admin_site(client, django_user_model):
    django_user_model.objects.create_superuser("op", "op@example.com", "pw-12345678")
    response = client.post(
        "/django-admin/login/?next=/django-admin/",
        {"username": "op", "password": "pw-12345678"},
    )
    assert response.status_code == 302
    assert response.cookies["sessionid"]["path"] == "/django-admin/"
