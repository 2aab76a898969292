"""The canary sweep: after the whole suite, no secret is anywhere it must not be.

Runs last (marker `last`). It drives every surface once more with fresh canaries,
then searches the database (every table, every row), the output of every gunicorn
the run started (on every xdist worker), every admin page, every admin API answer and every proxy error
body for any upstream secret, plaintext gateway key, the admin token or the
encryption key that the session ever used.
"""

from __future__ import annotations

import re

import pytest
import requests
from django.contrib.auth import get_user_model
from django.db import connection

from testing.helpers import every_canary, remember_secret

pytestmark = [pytest.mark.last, pytest.mark.django_db(transaction=True)]

CHAT = {"model": "gpt-test", "messages": [{"role": "user", "content": "hi"}]}


def _database_text() -> str:
    parts = []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names(cursor):
            # table names come from the database itself, quoted
            cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")  # noqa: S608
            parts.extend(repr(row) for row in cursor.fetchall())
    return "\n".join(parts)


def _found(haystack: str, needles: set[str]) -> list[str]:
    # Name a leak by a short prefix only: the failure message must not leak it again.
    return sorted(n[:10] + "…" for n in needles if n and n in haystack)


def test_no_secret_anywhere_after_the_suite(live_gateway, server_logs_dir, settings):
    from testing.fake_provider import FakeProvider

    admin = {"Authorization": f"Bearer {settings.ADMIN_TOKEN}"}
    api = f"{live_gateway.url}/admin"
    answers: list[str] = []
    fake = FakeProvider().start()
    try:
        secret = remember_secret("sk-canary-upstream-secret-7c1f2e9a")
        up = requests.post(
            f"{api}/upstreams",
            json={
                "name": "canary",
                "provider": "openai",
                "base_url": fake.base_url,
                "api_key": secret,
            },
            headers=admin,
            timeout=10,
        )
        assert up.status_code == 201, up.text
        answers.append(up.text)
        created = requests.post(
            f"{api}/keys",
            json={"name": "canary", "upstream_ids": [up.json()["id"]]},
            headers=admin,
            timeout=10,
        )
        assert created.status_code == 201, created.text
        raw = remember_secret(created.json()["key"])
        rotated = requests.post(
            f"{api}/keys/{created.json()['id']}/rotate",
            json={"grace_seconds": 60},
            headers=admin,
            timeout=10,
        )
        assert rotated.status_code == 201, rotated.text
        remember_secret(rotated.json()["key"])

        auth = {"Authorization": f"Bearer {raw}"}
        proxy_calls = [
            requests.post(
                f"{live_gateway.url}/v1/chat/completions", json=CHAT, headers=auth, timeout=10
            ),
            requests.post(
                f"{live_gateway.url}/v1/chat/completions",
                json={**CHAT, "stream": True},
                headers={**auth, "x-fake-status": "500"},
                timeout=10,
            ),
            requests.post(
                f"{live_gateway.url}/v1/chat/completions",
                json=CHAT,
                headers={**auth, "X-Upstream-Name": "nope"},
                timeout=10,
            ),
            requests.post(
                f"{live_gateway.url}/v1/messages",
                json=CHAT,
                headers={"x-api-key": raw[:-1] + "x"},
                timeout=10,
            ),
            requests.post(
                f"{live_gateway.url}/v1/chat/completions",
                json=CHAT,
                headers={"x-api-key": raw + "x" * 5000},
                timeout=10,
            ),
        ]
        assert proxy_calls[0].status_code == 200
        for r in proxy_calls[1:]:
            assert r.status_code >= 400
        answers.extend(r.text for r in proxy_calls)
        # The upstream did receive the secret (so it was really used) ...
        assert any(secret in str(received.headers) for received in fake.requests)
    finally:
        fake.stop()

    for path in ("keys", "upstreams", "logs"):
        listing = requests.get(f"{api}/{path}", headers=admin, timeout=10)
        assert listing.status_code == 200
        answers.append(listing.text)
        for item in listing.json()["items"]:
            detail = requests.get(f"{api}/{path}/{item['id']}", headers=admin, timeout=10)
            assert detail.status_code == 200
            answers.append(detail.text)
    answers.append(requests.get(f"{live_gateway.url}/openapi.json", timeout=10).text)

    # Every admin page linked from the index, and each object's change page, rendered
    # in-process (no collected manifest here, so plain static storage).
    from django.test import Client

    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    user = get_user_model().objects.create_superuser(
        "canary-admin", "c@example.com", "pw-canary-123"
    )
    client = Client()
    client.force_login(user)
    index = client.get("/django-admin/")
    assert index.status_code == 200
    pages = {"/django-admin/"} | set(
        re.findall(r'href="(/django-admin/[^"#?]+)"', index.content.decode())
    )
    for page in sorted(pages):
        if "logout" in page:
            continue
        response = client.get(page)
        assert response.status_code in (200, 302), page
        text = response.content.decode(errors="replace")
        answers.append(text)
        for change in set(re.findall(r'href="(/django-admin/[^"#?]+/change/)"', text)):
            answers.append(client.get(change).content.decode(errors="replace"))

    canaries = every_canary() | {settings.ADMIN_TOKEN, settings.ENCRYPTION_KEY}
    assert len(canaries) > 3

    assert _found(_database_text(), canaries) == []
    server_output = "\n".join(p.read_text(errors="replace") for p in server_logs_dir.glob("*.log"))
    assert server_output, "no server output was captured"
    assert _found(server_output, canaries) == []
    # The one answer allowed to carry a plaintext key is its own create/rotate 201.
    assert _found("\n".join(answers), canaries) == []
