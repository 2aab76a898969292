"""A NUL in a list filter is a 400, never a 500 (PostgreSQL refuses NUL in text)."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.django_db


def test_a_nul_in_an_admin_site_filter_is_a_400(admin_client):
    response = admin_client.get("/django-admin/logs/requestlog/?model=a%00b")
    assert response.status_code == 400
