"""The admin API on a real gunicorn (2 gevent workers) against the test database:
concurrent writes, raw headers, and changes that every worker's proxy sees at once."""

from __future__ import annotations

import base64
import datetime as dt
import http.client
import uuid
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

import pytest
import requests
from django.contrib.auth import get_user_model
from django.contrib.sessions.backends.db import SessionStore

from keys.models import APIKey
from testing.fake_provider import FakeProvider
from testing.helpers import remember_secret, wait_until

# Enough fresh connections that both workers serve some of them.
ROUNDS = 16
FORBIDDEN = {"error": "forbidden", "message": "Admin access required"}


@pytest.fixture
def gw(live_gateway, transactional_db):
    return live_gateway


@pytest.fixture(scope="module")
def provider():
    fp = FakeProvider().start()
    yield fp
    fp.stop()


class Admin:
    def __init__(self, url: str, token: str):
        self.url, self.headers = url, {"Authorization": f"Bearer {token}"}

    def __call__(self, method: str, path: str, body=None) -> requests.Response:
        return requests.request(
            method, self.url + path, json=body, headers=self.headers, timeout=15
        )


@pytest.fixture
def admin(gw, admin_token) -> Admin:
    return Admin(gw.url, admin_token)


def proxy_statuses(gw, raw_key: str, *, upstream: str | None = None) -> list:
    """(status, error code) of ROUNDS proxied requests, each on a fresh connection."""
    headers = {"Authorization": f"Bearer {raw_key}", "Connection": "close"}
    if upstream:
        headers["X-Upstream-Name"] = upstream
    out = []
    for _ in range(ROUNDS):
        response = requests.get(f"{gw.url}/v1/models", headers=headers, timeout=15)
        code = None
        if response.status_code >= 400 and "error" in response.json():
            code = response.json()["error"].get("code")
        out.append((response.status_code, code))
    return out


def routed(admin, provider, *names):
    ups = []
    for name in names:
        secret = remember_secret(f"sk-live-{uuid.uuid4().hex}")
        body = {"name": name, "provider": "openai", "base_url": provider.base_url,
                "api_key": secret, "timeout": 5}  # fmt: skip
        response = admin("POST", "/admin/upstreams", body)
        assert response.status_code == 201, response.text
        ups.append(response.json())
    key = admin("POST", "/admin/keys", {"name": "live", "upstream_ids": [u["id"] for u in ups]})
    assert key.status_code == 201, key.text
    remember_secret(key.json()["key"])
    return ups, key.json()


def test_concurrent_creates_never_fail(admin, make_upstream):
    up = make_upstream()
    body = {"name": "parallel", "upstream_ids": [str(up.pk)]}
    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(lambda _: admin("POST", "/admin/keys", body), range(24)))
    assert [a.status_code for a in answers] == [201] * 24
    keys = [remember_secret(a.json()["key"]) for a in answers]
    assert len(set(keys)) == 24 and APIKey.objects.count() == 24


def test_racing_for_one_name_or_the_default_is_a_conflict_not_a_500(admin):
    def make(i):
        return admin("POST", "/admin/upstreams", {
            "name": "contested", "provider": "openai", "base_url": "http://127.0.0.1:9/v1",
            "api_key": remember_secret(f"sk-race-{i}-{uuid.uuid4().hex}"), "is_default": True,
        })  # fmt: skip

    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(make, range(12)))
    statuses = sorted(a.status_code for a in answers)
    assert statuses == [201] + [409] * 11, [a.text for a in answers if a.status_code != 201]
    assert {a.json()["error"] for a in answers if a.status_code == 409} == {"conflict"}


def _raw(gw, header_value: bytes, path="/admin/keys") -> tuple[int, bytes, str]:
    parts = urlsplit(gw.url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=15)
    try:
        conn.putrequest("GET", path)
        conn.putheader("Authorization", header_value)
        conn.endheaders()
        response = conn.getresponse()
        return response.status, response.read(), response.getheader("Content-Type", "")
    finally:
        conn.close()


@pytest.mark.parametrize(
    "header",
    [
        "Bearer {token}\u00e9".encode(),  # UTF-8 after the token
        b"Bearer \xff\xfe\x00\x01"[:-2],
        "Bearer токен".encode(),
        b"Bearer " + b"a" * 8192,
        b"Basic {basic}",
        b"{token}",
    ],
)
def test_raw_headers_get_a_clean_403(gw, admin_token, header):
    basic = base64.b64encode(f"admin:{admin_token}".encode())
    value = header.replace(b"{token}", admin_token.encode()).replace(b"{basic}", basic)
    status, body, content_type = _raw(gw, value)
    assert (status, content_type) == (403, "application/json")
    assert body == b'{"error":"forbidden","message":"Admin access required"}'
    assert _raw(gw, f"Bearer {admin_token}".encode())[0] == 200


def test_a_superuser_session_is_not_a_door(gw):
    user = get_user_model().objects.create_superuser("boss", "b@example.com", "pw-12345678")
    session = SessionStore()
    session["_auth_user_id"] = str(user.pk)
    session["_auth_user_backend"] = "django.contrib.auth.backends.ModelBackend"
    session["_auth_user_hash"] = user.get_session_auth_hash()
    session.create()
    cookies = {"sessionid": session.session_key}
    for method in ("GET", "POST"):
        response = requests.request(method, f"{gw.url}/admin/keys", cookies=cookies,
                                    json={"name": "x"}, timeout=15)  # fmt: skip
        assert (response.status_code, response.json()) == (403, FORBIDDEN)


def test_revocation_is_refused_at_once_on_every_worker(gw, admin, provider):
    _, key = routed(admin, provider, "rev")
    assert set(proxy_statuses(gw, key["key"])) == {(200, None)}
    assert admin("DELETE", f"/admin/keys/{key['id']}").status_code == 204
    assert set(proxy_statuses(gw, key["key"])) == {(401, "invalid_api_key")}


def test_rotation_stops_the_old_key_and_starts_the_new_one_at_once(gw, admin, provider):
    _, key = routed(admin, provider, "rot")
    assert set(proxy_statuses(gw, key["key"])) == {(200, None)}
    new = admin("POST", f"/admin/keys/{key['id']}/rotate").json()
    remember_secret(new["key"])
    assert set(proxy_statuses(gw, key["key"])) == {(401, "invalid_api_key")}
    assert set(proxy_statuses(gw, new["key"])) == {(200, None)}


def test_narrowing_and_expiry_take_effect_at_once(gw, admin, provider):
    (a, b), key = routed(admin, provider, "narrow-a", "narrow-b")
    assert set(proxy_statuses(gw, key["key"], upstream="narrow-b")) == {(200, None)}
    admin("PATCH", f"/admin/keys/{key['id']}", {"upstream_ids": [a["id"]]})
    assert set(proxy_statuses(gw, key["key"], upstream="narrow-b")) == {(403, "forbidden")}
    assert set(proxy_statuses(gw, key["key"], upstream="narrow-a")) == {(200, None)}
    past = (dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    refused = admin("PATCH", f"/admin/keys/{key['id']}", {"expires_at": past})
    assert (refused.status_code, refused.json()["error"]) == (400, "validation_error")
    assert set(proxy_statuses(gw, key["key"], upstream="narrow-a")) == {(200, None)}
    # An expiry can only be set in the future: every worker honours it once it passes.
    soon = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=2)
    admin("PATCH", f"/admin/keys/{key['id']}", {"expires_at": soon.isoformat()})
    wait_until(lambda: dt.datetime.now(dt.UTC) > soon, timeout=5)
    assert set(proxy_statuses(gw, key["key"])) == {(401, "api_key_expired")}


def test_deactivating_an_upstream_takes_effect_at_once(gw, admin, provider):
    (up,), key = routed(admin, provider, "deact")
    assert set(proxy_statuses(gw, key["key"])) == {(200, None)}
    assert admin("DELETE", f"/admin/upstreams/{up['id']}").status_code == 204
    assert set(proxy_statuses(gw, key["key"])) == {(503, "service_unavailable")}
    admin("PATCH", f"/admin/upstreams/{up['id']}", {"is_active": True})
    assert set(proxy_statuses(gw, key["key"])) == {(200, None)}


def test_a_new_upstream_secret_is_used_at_once(gw, admin, provider):
    (up,), key = routed(admin, provider, "resecret")
    provider.clear()
    assert set(proxy_statuses(gw, key["key"])) == {(200, None)}
    secret = remember_secret(f"sk-new-{uuid.uuid4().hex}")
    admin("PATCH", f"/admin/upstreams/{up['id']}", {"api_key": secret})
    provider.clear()
    assert set(proxy_statuses(gw, key["key"])) == {(200, None)}
    assert {r.headers.get("authorization") for r in provider.requests} == {f"Bearer {secret}"}
