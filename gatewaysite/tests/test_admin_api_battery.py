"""One battery over every admin endpoint: the door, the ids, the pages, the secrets.

Each endpoint is listed once in ENDPOINTS; every check runs over all of them, so a
new endpoint is covered by adding a line.
"""

from __future__ import annotations

import base64
import uuid
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from gatewaysite.tests.admin_api import admin_client, assert_error, text_of
from keys.models import APIKey, KeyringVersion
from logs.models import RequestLog
from logs.services import log_open
from prices.services import price_create
from testing.helpers import remember_secret
from upstreams.models import RegistryVersion, Upstream

pytestmark = pytest.mark.django_db

# (method, path with {key} / {upstream} / {log} placeholders, a valid body or None)
ENDPOINTS = [
    ("get", "/admin/keys", None),
    ("post", "/admin/keys", {"name": "k", "upstream_ids": ["{upstream}"]}),
    ("get", "/admin/keys/{key}", None),
    ("patch", "/admin/keys/{key}", {"name": "renamed"}),
    ("delete", "/admin/keys/{key}", None),
    ("post", "/admin/keys/{key}/rotate", {"grace_seconds": 0}),
    ("get", "/admin/upstreams", None),
    (
        "post",
        "/admin/upstreams",
        {"name": "new", "provider": "openai", "base_url": "http://x/v1", "api_key": "sk-n-1234"},
    ),
    ("get", "/admin/upstreams/{upstream}", None),
    (
        "put",
        "/admin/upstreams/{upstream}",
        {"name": "u", "provider": "openai", "base_url": "http://y/v1"},
    ),  # fmt: skip
    ("patch", "/admin/upstreams/{upstream}", {"timeout": 5}),
    ("delete", "/admin/upstreams/{upstream}", None),
    ("get", "/admin/logs", None),
    ("get", "/admin/logs/{log}", None),
    ("get", "/admin/prices", None),
    ("post", "/admin/prices", {"model": "gpt-new", "input": "1", "output": "2"}),
    ("get", "/admin/prices/{price}", None),
    ("put", "/admin/prices/{price}", {"model": "gpt-x", "input": "1.5", "output": "2"}),
    ("patch", "/admin/prices/{price}", {"output": "3"}),
    ("delete", "/admin/prices/{price}", None),
    ("get", "/admin/usage", None),
    ("get", "/admin/logs/export?format=jsonl", None),
]
DETAIL = [e for e in ENDPOINTS if "{" in e[1]]
LISTS = ["/admin/keys", "/admin/upstreams", "/admin/logs"]
FORBIDDEN = {"error": "forbidden", "message": "Admin access required"}


@pytest.fixture
def world(make_key):
    key, raw = make_key()
    upstream = key.upstreams.get()
    request_id = uuid.uuid4()
    log_open(request_id=request_id, method="GET", path="/v1/models", api_key_id=key.pk,
             upstream_id=upstream.pk)  # fmt: skip
    price = price_create(actor="tests", model="gpt-4o", input=Decimal("2.5"), output=Decimal("10"))
    return {"key": str(key.pk), "upstream": str(upstream.pk), "log": str(request_id), "raw": raw,
            "price": str(price.pk)}  # fmt: skip


def fill(template, world):
    if isinstance(template, str):
        return template.format(**world)
    if isinstance(template, list):
        return [fill(v, world) for v in template]
    if isinstance(template, dict):
        return {k: fill(v, world) for k, v in template.items()}
    return template


def call(client, method, path, body, world, **extra):
    return getattr(client, method)(fill(path, world), fill(body, world), format="json", **extra)


def state():
    """Everything a refused request must leave as it was."""
    return (
        list(APIKey.objects.order_by("pk").values_list("pk", "name", "is_active", "revoked_at")),
        list(Upstream.objects.order_by("pk").values_list("pk", "name", "is_active", "timeout")),
        KeyringVersion.current(),
        RegistryVersion.current(),
        RequestLog.objects.count(),
    )


def _superuser_session():
    user = get_user_model().objects.create_superuser("root", "root@example.com", "pw-12345678")
    client = APIClient(enforce_csrf_checks=False)
    client.force_login(user)
    return client


def _with_header(value):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=value)
    return client


WAYS_IN = {
    "no header": lambda token: APIClient(),
    "wrong token": lambda token: _with_header("Bearer wrong-token"),
    "token plus one": lambda token: _with_header(f"Bearer {token}x"),
    "token minus one": lambda token: _with_header(f"Bearer {token[:-1]}"),
    "no scheme": lambda token: _with_header(token),
    "other scheme": lambda token: _with_header(f"Token {token}"),
    "basic": lambda token: _with_header(
        "Basic " + base64.b64encode(f"admin:{token}".encode()).decode()
    ),
    "basic token as user": lambda token: _with_header(
        "Basic " + base64.b64encode(f"{token}:".encode()).decode()
    ),
    "bare bearer": lambda token: _with_header("Bearer"),
    "non-ascii": lambda token: _with_header(f"Bearer {token}é"),
    "non-latin-1": lambda token: _with_header("Bearer 令牌"),
    "8 KB": lambda token: _with_header("Bearer " + "a" * 8192),
    "superuser session": lambda token: _superuser_session(),
}


@pytest.mark.parametrize("way", list(WAYS_IN))
@pytest.mark.parametrize(("method", "path", "body"), ENDPOINTS)
def test_every_other_way_in_is_a_clean_403(world, admin_token, way, method, path, body):
    before = state()
    response = call(WAYS_IN[way](admin_token), method, path, body, world)
    assert response.status_code == 403
    assert response.json() == FORBIDDEN
    assert "WWW-Authenticate" not in response
    assert state() == before


@pytest.mark.parametrize(("method", "path", "body"), ENDPOINTS)
def test_an_empty_admin_token_closes_the_api(world, settings, method, path, body):
    settings.ADMIN_TOKEN = ""
    for header in ("Bearer ", "Bearer", "Bearer  ", ""):
        response = call(_with_header(header), method, path, body, world)
        assert response.status_code == 403 and response.json() == FORBIDDEN


@pytest.mark.parametrize(("method", "path", "body"), ENDPOINTS)
def test_the_token_opens_every_endpoint(world, admin_token, method, path, body):
    response = call(admin_client(admin_token), method, path, body, world)
    if response.status_code == 201 and "key" in response.json():
        remember_secret(response.json()["key"])
    assert response.status_code in (200, 201, 204), response.content
    # The scheme is case-insensitive (RFC 9110); surrounding spaces are forgiven.
    client = _with_header(f"bearer  {admin_token} ")
    assert call(client, "get", "/admin/keys", None, world).status_code == 200


@pytest.mark.parametrize(("method", "path", "body"), DETAIL)
@pytest.mark.parametrize("bad_id", ["unknown", "not-a-uuid", "12", "%20", "..", "ABC-DEF"])
def test_unknown_and_malformed_ids_are_404(world, api, method, path, body, bad_id):
    before = state()
    ident = str(uuid.uuid4()) if bad_id == "unknown" else bad_id
    broken = {**world, "key": ident, "upstream": ident, "log": ident, "price": ident}
    response = getattr(api, method)(path.format(**broken), fill(body, world), format="json")
    assert_error(response, 404, "not_found")
    assert state() == before


@pytest.mark.parametrize("path", ["/admin/nope", "/admin/keys/", "/admin/keys/x/y", "/admin/"])
def test_paths_that_name_no_endpoint_are_json_404s(api, path):
    assert_error(api.get(path), 404, "not_found")
    assert_error(api.post(path, {}, format="json"), 404, "not_found")
    assert APIClient().get(path).json() == FORBIDDEN


@pytest.mark.parametrize("path", LISTS)
def test_every_list_is_a_page_newest_first(api, make_key, path):
    for _ in range(3):
        key, _ = make_key()
        log_open(request_id=uuid.uuid4(), method="GET", path="/v1/x", api_key_id=key.pk)
    first = api.get(f"{path}?page_size=2").json()
    total = first["total"]
    assert total >= 3 and first["pages"] == -(-total // 2)
    assert (first["page"], first["page_size"], len(first["items"])) == (1, 2, 2)
    items = [i for p in range(1, first["pages"] + 1)
             for i in api.get(f"{path}?page_size=2&page={p}").json()["items"]]  # fmt: skip
    assert len(items) == total == len({i["id"] for i in items})
    stamps = [i["created_at"] for i in items]
    assert stamps == sorted(stamps, reverse=True)
    assert_error(api.get(f"{path}?page={first['pages'] + 1}&page_size=2"), 404, "not_found")
    for bad in ("page=0", "page=-1", "page=abc", "page_size=0", "ordering=nope"):
        assert_error(api.get(f"{path}?{bad}"), 400, "validation_error")
    assert api.get(f"{path}?page_size=201").json()["page_size"] == 200


@pytest.mark.parametrize(("method", "path", "body"), [e for e in ENDPOINTS if e[2]])
def test_bodies_must_be_json(world, api, method, path, body):
    url = fill(path, world)
    response = getattr(api, method)(url, "{not json", content_type="application/json")
    assert_error(response, 400, "parse_error")
    response = getattr(api, method)(url, "name=x", content_type="application/x-www-form-urlencoded")
    assert_error(response, 415, "unsupported_media_type")
    response = getattr(api, method)(url, "[" * 100_000, content_type="application/json")
    assert_error(response, 400, "parse_error")


@pytest.mark.parametrize("path", ["/admin/keys", "/admin/keys/{key}", "/admin/upstreams/{upstream}",
                                  "/admin/logs", "/admin/keys/{key}/rotate"])  # fmt: skip
def test_options_and_unsupported_methods_say_what_is_allowed(world, api, path):
    url = fill(path, world)
    allowed = {m for (m, p, _) in ENDPOINTS if p == path}
    options = api.options(url)
    assert options.status_code == 200
    advertised = {m.strip().lower() for m in options["Allow"].split(",")}
    assert advertised - {"head", "options"} == allowed
    for method in {"get", "post", "put", "patch", "delete"} - allowed:
        response = getattr(api, method)(url, {}, format="json")
        assert_error(response, 405, "method_not_allowed")
        assert response["Allow"] == options["Allow"]


def test_no_answer_ever_carries_a_secret(api, make_upstream):
    """Drive every endpoint through a full life and sweep all that comes back."""
    secret1 = remember_secret(f"sk-first-{uuid.uuid4().hex}")
    secret2 = remember_secret(f"sk-second-{uuid.uuid4().hex}")
    answers = []

    def keep(response, *, allowed_key=None):
        answers.append((response, allowed_key))
        return response.json() if response.content else None

    up = keep(api.post("/admin/upstreams", {"name": "sweep", "provider": "openai",
                                            "base_url": "http://127.0.0.1:9/v1",
                                            "api_key": secret1}, format="json"))  # fmt: skip
    keep(api.patch(f"/admin/upstreams/{up['id']}", {"api_key": secret2}, format="json"))
    keep(api.put(f"/admin/upstreams/{up['id']}", {"name": "sweep", "provider": "openai",
                                                  "base_url": "http://127.0.0.1:9/v2"},
                 format="json"))  # fmt: skip
    created = api.post("/admin/keys", {"name": "s", "upstream_ids": [up["id"]]}, format="json")
    key1 = remember_secret(keep(created, allowed_key="first")["key"])
    rotated = api.post(f"/admin/keys/{created.json()['id']}/rotate", {"grace_seconds": 60},
                       format="json")  # fmt: skip
    key2 = remember_secret(keep(rotated, allowed_key="second")["key"])
    log_open(request_id=uuid.uuid4(), method="POST", path="/v1/chat/completions",
             api_key_id=rotated.json()["id"], upstream_id=up["id"])  # fmt: skip
    for path in ("/admin/keys", "/admin/upstreams", "/admin/logs"):
        page = keep(api.get(path))
        for item in page["items"]:
            keep(api.get(f"{path}/{item['id']}"))
    keep(api.patch(f"/admin/keys/{rotated.json()['id']}", {"name": "t"}, format="json"))
    keep(api.delete(f"/admin/keys/{rotated.json()['id']}"))
    keep(api.delete(f"/admin/upstreams/{up['id']}"))
    keep(api.post("/admin/keys", {"name": "s", "upstream_ids": [up["id"]]}, format="json"))

    hashes = list(APIKey.objects.values_list("key_hash", flat=True))
    ciphertexts = list(Upstream.objects.values_list("secret_encrypted", flat=True))
    assert len(answers) > 12 and len(hashes) == 2
    for response, allowed_key in answers:
        text = text_of(response)
        for secret in (secret1, secret2, *hashes, *ciphertexts):
            assert secret not in text, response.request
        body = response.json() if response.content else {}
        expected = {"first": key1, "second": key2}.get(allowed_key)
        for key in (key1, key2):
            visible = text.count(key)
            assert visible == (1 if key == expected else 0), (key[:12], response.request)
            if key == expected:
                assert body["key"] == key
