"""Every change made through the admin API lands in Django's admin history (LogEntry)."""

from __future__ import annotations

import pytest
from django.contrib.admin.models import ADDITION, CHANGE, LogEntry
from django.contrib.auth import get_user_model
from django.test import Client

from gatewaysite.history import ADMIN_API as AUDIT_USERNAME
from keys.models import APIKey
from testing.helpers import remember_secret
from upstreams.models import Upstream

pytestmark = pytest.mark.django_db


def entries():
    return [
        (e.user.username, e.content_type.model, e.object_id, e.action_flag, e.get_change_message())
        for e in LogEntry.objects.select_related("user", "content_type").order_by("pk")
    ]


def test_each_write_is_one_history_entry_by_admin_api(api):
    secret = remember_secret("sk-audited-secret-4242")
    up = api.post("/admin/upstreams", {"name": "a", "provider": "openai",
                                       "base_url": "http://127.0.0.1:9/v1", "api_key": secret},
                  format="json").json()  # fmt: skip
    api.patch(f"/admin/upstreams/{up['id']}", {"api_key": secret + "x", "timeout": 9},
              format="json")  # fmt: skip
    key = api.post("/admin/keys", {"name": "k", "upstream_ids": [up["id"]]}, format="json").json()
    remember_secret(key["key"])
    api.patch(f"/admin/keys/{key['id']}", {"name": "k2", "description": "d"}, format="json")
    new = api.post(f"/admin/keys/{key['id']}/rotate", {"grace_seconds": 30}, format="json").json()
    remember_secret(new["key"])
    api.delete(f"/admin/keys/{new['id']}")
    api.delete(f"/admin/upstreams/{up['id']}")
    new_prefix = new["key_prefix"]
    assert entries() == [
        (AUDIT_USERNAME, "upstream", up["id"], ADDITION, "Added."),
        (AUDIT_USERNAME, "upstream", up["id"], CHANGE, "Changed api_key and timeout."),
        (AUDIT_USERNAME, "apikey", key["id"], ADDITION, "Added."),
        (AUDIT_USERNAME, "apikey", key["id"], CHANGE, "Changed description and name."),
        (AUDIT_USERNAME, "apikey", key["id"], CHANGE,
         f"Rotated; replaced by {new_prefix}…; the old key works 30 s more."),
        (AUDIT_USERNAME, "apikey", new["id"], CHANGE, "Revoked."),
        (AUDIT_USERNAME, "upstream", up["id"], CHANGE, "Deactivated."),
    ]  # fmt: skip
    text = str(list(LogEntry.objects.values()))
    assert secret not in text and key["key"] not in text and new["key"] not in text


def test_the_audit_user_can_never_sign_in(api, make_upstream):
    api.post("/admin/keys", {"name": "k", "upstream_ids": [str(make_upstream().pk)]},
             format="json")  # fmt: skip
    user = get_user_model().objects.get(username=AUDIT_USERNAME)
    assert not user.has_usable_password()
    assert (user.is_active, user.is_staff, user.is_superuser) == (False, False, False)
    for password in ("", "!", user.password):
        assert not Client().login(username=AUDIT_USERNAME, password=password)


def test_refused_and_failed_writes_leave_no_entry(api, make_upstream):
    up = make_upstream()
    api.post("/admin/keys", {"name": "k", "upstream_ids": []}, format="json")
    api.post("/admin/upstreams", {"name": "BAD"}, format="json")
    api.patch(f"/admin/upstreams/{up.pk}", {"name": up.name}, format="json")  # not a conflict
    LogEntry.objects.all().delete()
    api.post("/admin/upstreams", {"name": up.name, "provider": "openai",
                                  "base_url": "http://x/v1", "api_key": "sk-xx-1234"},
             format="json")  # fmt: skip
    assert not LogEntry.objects.exists()
    assert Upstream.objects.count() == 1 and not APIKey.objects.exists()


def test_a_history_entry_commits_or_rolls_back_with_its_change(api, make_upstream, monkeypatch):
    up = make_upstream()

    def broken(*args, **kwargs):
        raise RuntimeError("audit store unavailable")

    monkeypatch.setattr("keys.services.history_added", broken)
    response = api.post("/admin/keys", {"name": "k", "upstream_ids": [str(up.pk)]}, format="json")
    assert response.status_code == 500
    assert response.json() == {"error": "internal_error",
                               "message": "Internal error; see the server log"}  # fmt: skip
    assert not APIKey.objects.exists()  # the key was not created without its history
    assert AUDIT_USERNAME == "admin-api"
