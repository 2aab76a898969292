"""The admin API for keys: create, list, get, change, revoke, rotate, and their errors."""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import uuid

import pytest
from django.utils import timezone

from gatewaysite.tests.admin_api import assert_error, assert_page
from keys.exceptions import KeyExpired, KeyInvalid
from keys.models import APIKey, KeyringVersion
from keys.selectors import key_authenticate
from testing.helpers import remember_secret
from upstreams.services import upstream_deactivate

pytestmark = pytest.mark.django_db

KEY_RE = re.compile(r"^sk-auto-[A-Za-z0-9_-]{43}$")
KEY_FIELDS = {
    "id", "name", "description", "key_prefix", "key_masked", "upstream_ids", "is_active",
    "status", "expires_at", "revoked_at", "rotated_from", "last_used_at", "created_at",
    "updated_at", "models",
    # limits (the limits app)
    "rpm_limit", "tpm_limit", "max_parallel", "budget_usd", "budget_tokens", "budget_period",
    "spend",
}  # fmt: skip


def create(api, **body):
    response = api.post("/admin/keys", body, format="json")
    if response.status_code == 201:
        remember_secret(response.json()["key"])
    return response


def test_create_answers_the_plaintext_once_and_stores_only_its_hash(api, make_upstream):
    up = make_upstream()
    response = create(api, name="ci", description="for CI", upstream_ids=[str(up.pk)])
    assert response.status_code == 201
    body = response.json()
    assert set(body) == KEY_FIELDS | {"key"}
    assert KEY_RE.match(body["key"])
    assert body["key_prefix"] == body["key"][:12]
    assert body["key_masked"] == body["key"][:12] + "********" + body["key"][-4:]
    assert body["upstream_ids"] == [str(up.pk)]
    assert (body["name"], body["description"]) == ("ci", "for CI")
    assert (body["is_active"], body["status"], body["expires_at"]) == (True, "active", None)
    row = APIKey.objects.get(pk=body["id"])
    assert row.key_hash == hashlib.sha256(body["key"].encode()).hexdigest()
    assert body["key"] not in str(APIKey.objects.filter(pk=row.pk).values().get())
    assert key_authenticate(raw_key=body["key"]).id == row.pk
    # Never again: the key's own page and the list show the mask only.
    for answer in (api.get(f"/admin/keys/{row.pk}"), api.get("/admin/keys")):
        assert body["key"] not in answer.content.decode()
        assert row.key_hash not in answer.content.decode()
        assert body["key_masked"] in answer.content.decode()


def test_create_with_an_expiry_keeps_it_in_utc(api, make_upstream):
    up = make_upstream()
    response = create(
        api, name="x", upstream_ids=[str(up.pk)], expires_at="2031-05-01T14:00:00+02:00"
    )
    assert response.status_code == 201
    assert response.json()["expires_at"] == "2031-05-01T12:00:00Z"


@pytest.mark.parametrize("upstream_ids", [None, [], "absent"])
def test_create_without_upstreams_is_missing_upstreams(api, upstream_ids):
    body = (
        {"name": "x"} if upstream_ids == "absent" else {"name": "x", "upstream_ids": upstream_ids}
    )
    assert_error(create(api, **body), 400, "missing_upstreams")
    assert not APIKey.objects.exists()


def test_unknown_or_inactive_upstreams_are_named_and_nothing_is_written(api, make_upstream):
    good, gone = make_upstream(), make_upstream()
    upstream_deactivate(actor="tests", upstream=gone)
    unknown = str(uuid.uuid4())
    version = KeyringVersion.current()
    response = create(api, name="x", upstream_ids=[str(good.pk), str(gone.pk), unknown, "nope"])
    body = assert_error(response, 400, "invalid_upstream")
    assert sorted(body["details"]["upstream_ids"]) == sorted([str(gone.pk), unknown, "nope"])
    assert not APIKey.objects.exists()
    assert KeyringVersion.current() == version


def test_upstreams_may_be_named_instead_of_ids(api, make_upstream):
    openai, anthropic = make_upstream(name="openai"), make_upstream(name="anthropic")
    response = create(api, name="by name", upstreams=["openai"])
    assert response.status_code == 201
    assert response.json()["upstream_ids"] == [str(openai.pk)]
    # A name where an id is asked for works too, and so do both lists at once.
    response = create(api, name="mixed", upstream_ids=[str(openai.pk)], upstreams=["anthropic"])
    assert sorted(response.json()["upstream_ids"]) == sorted([str(openai.pk), str(anthropic.pk)])
    key_id = response.json()["id"]
    body = api.patch(f"/admin/keys/{key_id}", {"upstream_ids": ["anthropic"]}, format="json").json()
    assert body["upstream_ids"] == [str(anthropic.pk)]


def test_unknown_upstream_names_are_named_back(api, make_upstream):
    make_upstream(name="openai")
    body = assert_error(
        create(api, name="x", upstreams=["openai", "opnai"]), 400, "invalid_upstream"
    )
    assert body["details"]["upstream_ids"] == ["opnai"]
    assert_error(create(api, name="x", upstreams=[]), 400, "missing_upstreams")
    assert not APIKey.objects.exists()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"upstream_ids": ["x"]}, "name"),
        ({"name": "", "upstream_ids": ["x"]}, "name"),
        ({"name": 5, "upstream_ids": ["x"]}, "name"),
        ({"name": "x" * 201, "upstream_ids": ["x"]}, "name"),
        ({"name": "a\x00b", "upstream_ids": ["x"]}, "name"),
        ({"name": "x", "description": ["x"], "upstream_ids": ["x"]}, "description"),
        ({"name": "x", "upstream_ids": "not-a-list"}, "upstream_ids"),
        ({"name": "x", "upstream_ids": [5]}, "upstream_ids"),
        ({"name": "x", "upstream_ids": ["x"], "expires_at": "2030-01-01"}, "expires_at"),
        ({"name": "x", "upstream_ids": ["x"], "expires_at": "2030-01-01T00:00:00"}, "expires_at"),
        ({"name": "x", "upstream_ids": ["x"], "expires_at": 1893456000}, "expires_at"),
    ],
)
def test_bad_bodies_are_field_errors(api, body, field):
    error = assert_error(create(api, **body), 400, "validation_error")
    assert field in error["details"]
    assert not APIKey.objects.exists()


def test_a_body_that_is_not_an_object_is_a_validation_error(api):
    response = api.post("/admin/keys", [1, 2], format="json")
    assert "non_field_errors" in assert_error(response, 400, "validation_error")["details"]


def test_list_is_paginated_newest_first_and_filterable(api, make_upstream, make_key):
    a, b = make_upstream(), make_upstream()
    old, _ = make_key(name="old deploy", upstreams=[a])
    APIKey.objects.filter(pk=old.pk).update(created_at=timezone.now() - dt.timedelta(days=2))
    mid, _ = make_key(name="billing job", upstreams=[a, b])
    APIKey.objects.filter(pk=mid.pk).update(created_at=timezone.now() - dt.timedelta(days=1))
    new, _ = make_key(name="new Deploy", upstreams=[b])
    items = assert_page(api.get("/admin/keys"), total=3)
    assert [i["id"] for i in items] == [str(new.pk), str(mid.pk), str(old.pk)]
    assert set(items[1]["upstream_ids"]) == {str(a.pk), str(b.pk)}

    def ids(query):
        return [i["id"] for i in api.get(f"/admin/keys?{query}").json()["items"]]

    assert ids("name=DEPLOY") == [str(new.pk), str(old.pk)]
    assert ids(f"upstream_id={a.pk}") == [str(mid.pk), str(old.pk)]
    assert ids("ordering=name") == [str(mid.pk), str(new.pk), str(old.pk)]
    assert ids("ordering=created_at") == [str(old.pk), str(mid.pk), str(new.pk)]
    page2 = assert_page(api.get("/admin/keys?page=2&page_size=2"), total=3, page=2, page_size=2)
    assert [i["id"] for i in page2] == [str(old.pk)]


def test_is_active_means_the_key_works_now(api, make_key, make_upstream):
    up = make_upstream()
    live, _ = make_key(upstreams=[up])
    revoked, _ = make_key(upstreams=[up])
    expired, _ = make_key(upstreams=[up], expires_at=timezone.now() - dt.timedelta(seconds=1))
    rotated, _ = make_key(upstreams=[up])
    api.delete(f"/admin/keys/{revoked.pk}")
    successor = api.post(f"/admin/keys/{rotated.pk}/rotate", {"grace_seconds": 600}, format="json")
    remember_secret(successor.json()["key"])
    status = {
        i["id"]: (i["is_active"], i["status"]) for i in api.get("/admin/keys").json()["items"]
    }
    assert status[str(live.pk)] == (True, "active")
    assert status[str(revoked.pk)] == (False, "revoked")
    assert status[str(expired.pk)] == (False, "expired")
    assert status[str(rotated.pk)] == (True, "grace")
    assert status[successor.json()["id"]] == (True, "active")
    active = {i["id"] for i in api.get("/admin/keys?is_active=true").json()["items"]}
    inactive = {i["id"] for i in api.get("/admin/keys?is_active=false").json()["items"]}
    assert active == {str(live.pk), str(rotated.pk), successor.json()["id"]}
    assert inactive == {str(revoked.pk), str(expired.pk)}


@pytest.mark.parametrize(
    "query",
    [
        "is_active=maybe", "is_active=", "is_active=1", "upstream_id=abc", "upstream_id=",
        "name=a%00b", "ordering=key_hash", "ordering=-key_hash", "ordering=", "ordering=name,id",
        "page=0", "page=-1", "page=abc", "page=1.5", "page_size=0", "page_size=abc", "page=",
    ],
)  # fmt: skip
def test_bad_list_parameters_are_400(api, make_key, query):
    make_key()
    assert_error(api.get(f"/admin/keys?{query}"), 400, "validation_error")


def test_a_page_past_the_end_is_404_and_page_size_is_capped(api, make_key):
    make_key()
    assert_error(api.get("/admin/keys?page=2"), 404, "not_found")
    assert_error(api.get("/admin/keys?page=99999999999999999999999"), 404, "not_found")
    assert_page(api.get("/admin/keys?page_size=100000"), total=1, page_size=200)


def test_an_empty_list_is_one_empty_page(api):
    assert assert_page(api.get("/admin/keys"), total=0) == []


def test_list_costs_three_queries_however_many_keys(
    api, make_key, make_upstream, django_assert_num_queries
):
    ups = [make_upstream() for _ in range(3)]
    for _ in range(12):
        make_key(upstreams=ups)
    # count, page, the page's upstream ids
    with django_assert_num_queries(3):
        assert len(api.get("/admin/keys").json()["items"]) == 12


def test_get_one_key_and_404s(api, make_key):
    key, raw = make_key(name="one")
    body = api.get(f"/admin/keys/{key.pk}").json()
    assert set(body) == KEY_FIELDS
    assert body["id"] == str(key.pk) and body["name"] == "one"
    assert_error(api.get(f"/admin/keys/{uuid.uuid4()}"), 404, "not_found")
    assert_error(api.get("/admin/keys/not-a-uuid"), 404, "not_found")
    assert_error(api.get(f"/admin/keys/{key.key_prefix}"), 404, "not_found")


def test_patch_changes_only_what_is_given(api, make_key, make_upstream):
    a, b = make_upstream(), make_upstream()
    key, raw = make_key(name="before", upstreams=[a, b], description="d")
    response = api.patch(f"/admin/keys/{key.pk}", {"name": "after"}, format="json")
    assert response.status_code == 200
    body = response.json()
    assert (body["name"], body["description"]) == ("after", "d")
    assert set(body["upstream_ids"]) == {str(a.pk), str(b.pk)}
    assert "key" not in body


def test_narrowing_upstreams_takes_effect_at_once(api, make_key, make_upstream):
    a, b = make_upstream(), make_upstream()
    key, raw = make_key(upstreams=[a, b])
    assert key_authenticate(raw_key=raw).upstream_ids == {a.pk, b.pk}  # warm the cache
    response = api.patch(f"/admin/keys/{key.pk}", {"upstream_ids": [str(b.pk)]}, format="json")
    assert response.json()["upstream_ids"] == [str(b.pk)]
    assert key_authenticate(raw_key=raw).upstream_ids == {b.pk}


def test_an_expiry_takes_effect_at_once_and_a_past_one_is_refused(api, make_key):
    key, raw = make_key()
    assert key_authenticate(raw_key=raw)
    past = (timezone.now() - dt.timedelta(minutes=1)).isoformat()
    refused = api.patch(f"/admin/keys/{key.pk}", {"expires_at": past}, format="json")
    assert assert_error(refused, 400, "validation_error")["details"] == {
        "expires_at": ["Must be in the future."]
    }
    assert key_authenticate(raw_key=raw)  # nothing changed
    soon = (timezone.now() + dt.timedelta(minutes=1)).isoformat()
    body = api.patch(f"/admin/keys/{key.pk}", {"expires_at": soon}, format="json").json()
    assert (body["is_active"], body["status"]) == (True, "active")
    with pytest.raises(KeyExpired):
        key_authenticate(raw_key=raw, now=timezone.now() + dt.timedelta(minutes=2))
    body = api.patch(f"/admin/keys/{key.pk}", {"expires_at": None}, format="json").json()
    assert (body["is_active"], body["expires_at"]) == (True, None)
    assert key_authenticate(raw_key=raw)


def test_patch_errors_change_nothing(api, make_key, make_upstream):
    up, gone = make_upstream(), make_upstream()
    upstream_deactivate(actor="tests", upstream=gone)
    key, raw = make_key(name="same", upstreams=[up])
    url = f"/admin/keys/{key.pk}"
    assert_error(api.patch(url, {"upstream_ids": []}, format="json"), 400, "missing_upstreams")
    assert_error(api.patch(url, {"upstream_ids": None}, format="json"), 400, "missing_upstreams")
    body = assert_error(
        api.patch(url, {"name": "changed", "upstream_ids": [str(gone.pk)]}, format="json"),
        400,
        "invalid_upstream",
    )
    assert body["details"] == {"upstream_ids": [str(gone.pk)]}
    assert_error(api.patch(url, {"name": None}, format="json"), 400, "validation_error")
    key.refresh_from_db()
    assert key.name == "same" and list(key.upstreams.all()) == [up]
    assert_error(api.put(url, {"name": "x"}, format="json"), 405, "method_not_allowed")


def test_delete_revokes_at_once_and_is_idempotent(api, make_key):
    key, raw = make_key()
    assert key_authenticate(raw_key=raw)
    response = api.delete(f"/admin/keys/{key.pk}")
    assert response.status_code == 204 and response.content == b""
    with pytest.raises(KeyInvalid):
        key_authenticate(raw_key=raw)
    body = api.get(f"/admin/keys/{key.pk}").json()
    assert (body["is_active"], body["status"]) == (False, "revoked")
    assert body["revoked_at"] is not None
    assert api.delete(f"/admin/keys/{key.pk}").status_code == 204
    assert_error(api.delete(f"/admin/keys/{uuid.uuid4()}"), 404, "not_found")


def test_rotate_without_grace_stops_the_old_key_now(api, make_key, make_upstream):
    a, b = make_upstream(), make_upstream()
    key, raw = make_key(name="svc", upstreams=[a, b], description="d")
    response = api.post(f"/admin/keys/{key.pk}/rotate")
    assert response.status_code == 201
    body = response.json()
    remember_secret(body["key"])
    assert set(body) == KEY_FIELDS | {"key"}
    assert body["key"] != raw and KEY_RE.match(body["key"])
    assert (body["name"], body["description"], body["rotated_from"]) == ("svc", "d", str(key.pk))
    assert set(body["upstream_ids"]) == {str(a.pk), str(b.pk)}
    assert key_authenticate(raw_key=body["key"]).id == uuid.UUID(body["id"])
    with pytest.raises(KeyInvalid):
        key_authenticate(raw_key=raw)
    old = api.get(f"/admin/keys/{key.pk}").json()
    assert (old["is_active"], old["status"]) == (False, "revoked")
    body = assert_error(api.post(f"/admin/keys/{key.pk}/rotate"), 409, "conflict")
    assert raw not in str(body)


def test_rotate_with_grace_keeps_the_old_key_until_then(api, make_key):
    key, raw = make_key()
    response = api.post(f"/admin/keys/{key.pk}/rotate", {"grace_seconds": 300}, format="json")
    remember_secret(response.json()["key"])
    assert response.status_code == 201
    assert key_authenticate(raw_key=raw).id == key.pk
    with pytest.raises(KeyInvalid):
        key_authenticate(raw_key=raw, now=timezone.now() + dt.timedelta(seconds=301))
    old = api.get(f"/admin/keys/{key.pk}").json()
    assert (old["is_active"], old["status"]) == (True, "grace")
    ends = dt.datetime.fromisoformat(old["revoked_at"])
    assert abs((ends - timezone.now()).total_seconds() - 300) < 30


@pytest.mark.parametrize("grace", [-1, "60", 1.5, True, 30 * 24 * 3600 + 1, None])
def test_rotate_refuses_a_bad_grace(api, make_key, grace):
    key, raw = make_key()
    response = api.post(f"/admin/keys/{key.pk}/rotate", {"grace_seconds": grace}, format="json")
    assert "grace_seconds" in assert_error(response, 400, "validation_error")["details"]
    assert key_authenticate(raw_key=raw)
    assert APIKey.objects.count() == 1


def test_rotate_an_expired_key_is_a_conflict(api, make_key):
    key, _ = make_key(expires_at=timezone.now() - dt.timedelta(seconds=1))
    assert_error(api.post(f"/admin/keys/{key.pk}/rotate"), 409, "conflict")
    assert_error(api.post("/admin/keys/nope/rotate"), 404, "not_found")


def test_rotating_a_key_in_grace_says_to_rotate_its_successor(api, make_key):
    key, raw = make_key()
    first = api.post(f"/admin/keys/{key.pk}/rotate", {"grace_seconds": 300}, format="json").json()
    remember_secret(first["key"])
    again = api.post(f"/admin/keys/{key.pk}/rotate", {"grace_seconds": 300}, format="json")
    message = assert_error(again, 409, "conflict")["message"]
    assert f"rotate its successor {first['key_prefix']}… instead" in message
    assert APIKey.objects.filter(rotated_from=key).count() == 1  # one working successor
    assert key_authenticate(raw_key=raw)  # still in its grace
