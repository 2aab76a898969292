"""The admin API for upstreams: create, list, get, replace, change, deactivate, and errors."""

from __future__ import annotations

import uuid

import pytest

from conftest import remember_secret
from gatewaysite.tests.admin_api import admin_client, assert_error, assert_page
from upstreams import crypto
from upstreams.models import RegistryVersion, Upstream
from upstreams.registry import snapshot

pytestmark = pytest.mark.django_db

UPSTREAM_FIELDS = {
    "id", "name", "provider", "base_url", "api_key_masked", "is_default", "timeout",
    "inject_stream_usage", "models", "aliases", "priority", "weight", "health", "is_active",
    "created_at", "updated_at",
}  # fmt: skip


@pytest.fixture
def api(admin_token):
    return admin_client(admin_token)


def body(**fields):
    secret = remember_secret(f"sk-test-{uuid.uuid4().hex}")
    return {"name": "openai", "provider": "openai", "base_url": "https://api.openai.com/v1",
            "api_key": secret} | fields  # fmt: skip


def create(api, **fields):
    return api.post("/admin/upstreams", body(**fields), format="json")


def test_create_stores_the_secret_encrypted_and_shows_only_a_hint(api):
    sent = body(name="main", timeout=30, is_default=True)
    response = api.post("/admin/upstreams", sent, format="json")
    assert response.status_code == 201
    got = response.json()
    assert set(got) == UPSTREAM_FIELDS
    assert got["api_key_masked"] == f"sk-***{sent['api_key'][-4:]}"
    assert (got["name"], got["provider"], got["timeout"], got["is_default"], got["is_active"]) == (
        "main",
        "openai",
        30.0,
        True,
        True,
    )
    row = Upstream.objects.get(pk=got["id"])
    assert sent["api_key"] not in str(Upstream.objects.filter(pk=row.pk).values().get())
    assert crypto.decrypt(row.secret_encrypted) == sent["api_key"]
    assert sent["api_key"] not in response.content.decode()
    assert row.secret_encrypted not in response.content.decode()
    assert snapshot().by_name["main"].secret == sent["api_key"]  # routable at once


def test_a_trailing_slash_in_base_url_is_dropped(api):
    assert create(api, base_url="http://127.0.0.1:8080/v1/").json()["base_url"] == (
        "http://127.0.0.1:8080/v1"
    )


@pytest.mark.parametrize(
    "base_url",
    [
        "http://localhost:11434/v1",
        "https://my-resource.openai.azure.com/openai/deployments/gpt",
        "http://[::1]:9000/v1",
        "http://[2001:db8::8a2e:370:7334]/v1",
        "http://model_server:65535",
        "https://api.example.com/v1/a%20b/~x:y@z",
    ],
)
def test_sane_base_urls_are_accepted(api, base_url):
    assert create(api, base_url=base_url).status_code == 201


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("name", "Upper"),
        ("name", "-dash-first"),
        ("name", "a" * 65),
        ("name", "main\n"),
        ("name", ""),
        ("name", 7),
        ("provider", "mistral"),
        ("provider", None),
        ("base_url", "ftp://example.com/v1"),
        ("base_url", "https://"),
        ("base_url", "https://user:pass@example.com/v1"),
        ("base_url", "https://example.com/v1#frag"),
        ("base_url", "https://example.com/v1?x=1"),
        ("base_url", "https://exa mple.com/v1"),
        ("base_url", "https://example.com:0/v1"),
        ("base_url", "https://example.com:70000/v1"),
        ("base_url", "http://[:::]/v1"),
        ("base_url", "https://example.com/" + "a" * 500),
        ("timeout", 0),
        ("timeout", -1),
        ("timeout", 3601),
        ("timeout", "5"),
        ("timeout", True),
        ("api_key", ""),
        ("api_key", "   "),
        ("api_key", "sk-abc\ndef"),
        ("api_key", "sk-ключ"),
        ("api_key", "x" * 4097),
        ("api_key", 12345),
        ("is_default", "true"),
        ("is_default", 1),
    ],
)
def test_bad_fields_are_400_and_create_nothing(api, field, value):
    response = create(api, **{field: value})
    error = assert_error(response, 400, "validation_error")
    assert list(error["details"]) == [field]
    assert not Upstream.objects.exists()
    if field == "api_key" and isinstance(value, str) and value.strip():
        assert value not in response.content.decode()


@pytest.mark.parametrize("missing", ["name", "provider", "base_url", "api_key"])
def test_required_fields(api, missing):
    sent = body()
    del sent[missing]
    response = api.post("/admin/upstreams", sent, format="json")
    assert missing in assert_error(response, 400, "validation_error")["details"]


def test_a_taken_name_is_a_conflict(api):
    assert create(api, name="dup").status_code == 201
    body_ = assert_error(create(api, name="dup"), 409, "conflict")
    assert "name" in body_["details"]
    other = create(api, name="other").json()
    response = api.patch(f"/admin/upstreams/{other['id']}", {"name": "dup"}, format="json")
    assert_error(response, 409, "conflict")


def test_one_default_at_a_time(api):
    first = create(api, name="first", is_default=True).json()
    second = create(api, name="second", is_default=True).json()
    assert api.get(f"/admin/upstreams/{first['id']}").json()["is_default"] is False
    assert second["is_default"] is True
    api.patch(f"/admin/upstreams/{first['id']}", {"is_default": True}, format="json")
    defaults = [u["name"] for u in api.get("/admin/upstreams").json()["items"] if u["is_default"]]
    assert defaults == ["first"]


def test_put_replaces_fields_and_keeps_the_secret_unless_given(api):
    created = create(api, name="a", timeout=10).json()
    url = f"/admin/upstreams/{created['id']}"
    old_secret = crypto.decrypt(Upstream.objects.get(pk=created["id"]).secret_encrypted)
    new = {"name": "b", "provider": "anthropic", "base_url": "https://api.anthropic.com/v1"}
    response = api.put(url, new, format="json")
    assert response.status_code == 200
    got = response.json()
    assert (got["name"], got["provider"], got["base_url"]) == tuple(new.values())
    assert got["api_key_masked"] == created["api_key_masked"]
    assert crypto.decrypt(Upstream.objects.get(pk=created["id"]).secret_encrypted) == old_secret
    response = api.put(url, {"name": "b"}, format="json")
    assert set(assert_error(response, 400, "validation_error")["details"]) == {
        "provider", "base_url"
    }  # fmt: skip


def test_a_new_secret_is_encrypted_afresh_and_in_force_at_once(api):
    created = create(api, name="a").json()
    assert snapshot().by_name["a"].secret  # warm the registry
    secret = remember_secret("sk-rotated-secret-9876")
    response = api.patch(f"/admin/upstreams/{created['id']}", {"api_key": secret}, format="json")
    assert response.json()["api_key_masked"] == "sk-***9876"
    assert secret not in response.content.decode()
    assert snapshot().by_name["a"].secret == secret


def test_delete_deactivates_at_once_and_patch_can_reactivate(api):
    created = create(api, name="a").json()
    url = f"/admin/upstreams/{created['id']}"
    assert snapshot().by_name["a"].is_active
    version = RegistryVersion.current()
    response = api.delete(url)
    assert response.status_code == 204 and response.content == b""
    assert RegistryVersion.current() != version
    assert snapshot().by_name["a"].is_active is False
    assert api.get(url).json()["is_active"] is False
    assert api.delete(url).status_code == 204
    assert api.patch(url, {"is_active": True}, format="json").json()["is_active"] is True
    assert snapshot().by_name["a"].is_active is True


def test_list_filters_and_ordering(api):
    for name, provider in [("zeta", "openai"), ("alpha", "anthropic"), ("mid", "openai")]:
        create(api, name=name, provider=provider)
    api.delete(f"/admin/upstreams/{Upstream.objects.get(name='mid').pk}")

    def names(query=""):
        return [u["name"] for u in api.get(f"/admin/upstreams?{query}").json()["items"]]

    assert names() == ["mid", "alpha", "zeta"]
    assert names("provider=openai") == ["mid", "zeta"]
    assert names("is_active=false") == ["mid"]
    assert names("is_active=true&provider=openai") == ["zeta"]
    assert names("name=ZE") == ["zeta"]
    assert names("ordering=name") == ["alpha", "mid", "zeta"]
    assert names("ordering=-provider") == ["mid", "zeta", "alpha"]
    for bad in ("provider=mistral", "provider=", "is_active=no", "ordering=secret_encrypted"):
        assert_error(api.get(f"/admin/upstreams?{bad}"), 400, "validation_error")


def test_list_costs_two_queries(api, make_upstream, django_assert_num_queries):
    for _ in range(10):
        make_upstream()
    with django_assert_num_queries(2):  # count, page
        items = assert_page(api.get("/admin/upstreams"), total=10)
    assert all(i["api_key_masked"].startswith("sk-***") for i in items)


def test_unknown_and_malformed_ids_are_404(api):
    for method in ("get", "put", "patch", "delete"):
        for ident in (uuid.uuid4(), "x", "1"):
            response = getattr(api, method)(f"/admin/upstreams/{ident}", {}, format="json")
            assert_error(response, 404, "not_found")
