"""Admin sign-in: failed attempts are throttled per address and per username."""

from __future__ import annotations

import pytest
from django.core.cache import cache

PASSWORD = "right-pw-12345678"


@pytest.fixture
def operator(django_user_model):
    cache.clear()
    yield django_user_model.objects.create_superuser("op", "op@example.com", PASSWORD)
    cache.clear()


def _sign_in(client, username, password, address="10.0.0.1"):
    return client.post(
        "/django-admin/login/?next=/django-admin/",
        {"username": username, "password": password},
        REMOTE_ADDR=address,
    )


@pytest.mark.django_db
def test_twenty_wrong_passwords_then_the_right_one_is_refused(client, operator):
    for _ in range(20):
        assert _sign_in(client, "op", "wrong").status_code == 200
    response = _sign_in(client, "op", PASSWORD)
    assert response.status_code == 200
    assert "Too many failed sign-ins" in response.content.decode()
    assert "_auth_user_id" not in client.session


@pytest.mark.django_db
def test_one_username_is_throttled_from_every_address(client, operator, settings):
    for i in range(settings.LOGIN_FAILURE_LIMIT):
        _sign_in(client, "op", "wrong", address=f"10.0.1.{i}")
    assert "Too many failed" in _sign_in(client, "op", PASSWORD, "10.9.9.9").content.decode()


@pytest.mark.django_db
def test_one_address_is_throttled_for_every_username(client, operator, settings):
    for i in range(settings.LOGIN_FAILURE_LIMIT):
        _sign_in(client, f"nobody-{i}", "wrong", address="10.0.2.1")
    assert "Too many failed" in _sign_in(client, "op", PASSWORD, "10.0.2.1").content.decode()
    # Another address may still sign in as op.
    assert _sign_in(client, "op", PASSWORD, "10.0.2.2").status_code == 302
