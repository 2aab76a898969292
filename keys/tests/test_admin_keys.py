"""The API key pages of the admin site: a key shown once, revoke and rotate through the services."""

import re

import pytest
from django.contrib.admin.models import LogEntry
from django.urls import reverse
from django.utils import timezone

from gatewaysite.tests.adminsite import rows_containing
from keys.exceptions import KeyInvalid
from keys.models import APIKey
from keys.selectors import key_authenticate
from upstreams.services import upstream_deactivate

pytestmark = pytest.mark.django_db

ADD_URL = reverse("admin:keys_apikey_add")
LIST_URL = reverse("admin:keys_apikey_changelist")
PLAINTEXT_RE = re.compile(r"sk-auto-[A-Za-z0-9_-]{43}")


def _change_url(key):
    return reverse("admin:keys_apikey_change", args=[key.pk])


def _add(client, upstreams, **fields):
    data = {
        "name": "billing service",
        "description": "",
        "upstreams": [str(u.pk) for u in upstreams],
    }
    data.update(fields)
    return client.post(ADD_URL, data)


def _every_page(client, key):
    pages = [
        LIST_URL,
        _change_url(key),
        reverse("admin:index"),
        reverse("admin:keys_apikey_history", args=[key.pk]),
    ]
    return "".join(client.get(url).content.decode() for url in pages)


def test_adding_a_key_shows_the_plaintext_once_and_stores_only_the_hash(
    admin_client, make_upstream
):
    upstream = make_upstream(name="openai-main")
    response = _add(admin_client, [upstream])
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    html = response.content.decode()
    (plaintext,) = set(PLAINTEXT_RE.findall(html))
    assert "Copy this key now" in html
    key = APIKey.objects.get(name="billing service")
    assert key_authenticate(raw_key=plaintext).id == key.pk
    assert [u.name for u in key.upstreams.all()] == ["openai-main"]
    # Never again: not on any page, not in any row (sessions decoded), not in a cookie.
    assert plaintext not in _every_page(admin_client, key)
    assert rows_containing(plaintext) == []
    assert all(plaintext not in c.value for c in response.cookies.values())
    assert all(plaintext not in c.value for c in admin_client.cookies.values())


def test_the_add_form_has_one_save_button(admin_client):
    html = admin_client.get(ADD_URL).content.decode()
    assert 'name="_save"' in html
    assert 'name="_addanother"' not in html and 'name="_continue"' not in html


def test_the_history_shows_changes_made_through_the_admin_api(admin_client, make_key, admin_token):
    key, _ = make_key()
    response = admin_client.delete(
        f"/admin/keys/{key.pk}", headers={"Authorization": f"Bearer {admin_token}"}
    )
    assert response.status_code == 204
    history = admin_client.get(reverse("admin:keys_apikey_history", args=[key.pk]))
    assert "admin-api" in history.content.decode()


def test_the_add_form_refuses_an_empty_upstream_choice(admin_client, make_upstream):
    make_upstream()
    response = _add(admin_client, [])
    assert response.status_code == 200
    assert "Choose at least one upstream this key may use." in response.content.decode()
    assert not APIKey.objects.exists()


def test_the_add_form_offers_only_active_upstreams(admin_client, make_upstream):
    make_upstream(name="live-one")
    gone = make_upstream(name="retired-one")
    upstream_deactivate(actor="tests", upstream=gone)
    html = admin_client.get(ADD_URL).content.decode()
    assert "live-one" in html and "retired-one" not in html
    assert "selectfilter" in html.lower()  # the horizontal filter widget
    response = _add(admin_client, [gone])
    assert response.status_code == 200 and not APIKey.objects.exists()


def test_an_expiry_in_the_past_is_refused(admin_client, make_upstream):
    upstream = make_upstream()
    response = _add(admin_client, [upstream], expires_at_0="2001-01-01", expires_at_1="00:00:00")
    assert "Must be in the future." in response.content.decode()


def test_the_list_shows_masked_keys_upstreams_and_status(admin_client, make_key, make_upstream):
    upstream = make_upstream(name="anthropic-main", provider="anthropic")
    key, plaintext = make_key(upstreams=[upstream], name="reporting")
    html = admin_client.get(LIST_URL).content.decode()
    assert key.key_masked in html
    assert "anthropic-main" in html and "reporting" in html and "active" in html
    assert plaintext not in html and key.key_hash not in html


def test_changing_a_key_goes_through_the_service(admin_client, make_key, make_upstream):
    a, b = make_upstream(name="a-up"), make_upstream(name="b-up")
    key, plaintext = make_key(upstreams=[a])
    response = admin_client.post(
        _change_url(key),
        {"name": "renamed", "description": "x", "upstreams": [str(b.pk)]},
    )
    assert response.status_code == 302
    grant = key_authenticate(raw_key=plaintext)  # the cache sees the change at once
    assert grant.name == "renamed" and grant.upstream_ids == {b.pk}


def test_revoke_action_asks_then_refuses_the_key_at_once(admin_client, make_key):
    key, plaintext = make_key()
    assert key_authenticate(raw_key=plaintext)  # warm the cache
    data = {"action": "revoke_selected", "_selected_action": [str(key.pk)]}
    confirm = admin_client.post(LIST_URL, data)
    assert confirm.status_code == 200 and "Yes, revoke" in confirm.content.decode()
    key.refresh_from_db()
    assert key.is_active  # nothing happens before the confirmation
    done = admin_client.post(LIST_URL, {**data, "confirm": "yes"})
    assert done.status_code == 302
    with pytest.raises(KeyInvalid):
        key_authenticate(raw_key=plaintext)
    assert "revoked" in admin_client.get(LIST_URL).content.decode()
    assert LogEntry.objects.filter(object_id=str(key.pk), change_message="Revoked.").exists()


def test_revoke_button_on_the_change_page(admin_client, make_key):
    key, plaintext = make_key()
    url = reverse("admin:keys_apikey_revoke", args=[key.pk])
    assert url in admin_client.get(_change_url(key)).content.decode()
    assert admin_client.get(url).status_code == 200
    assert admin_client.post(url, {"confirm": "yes"}).status_code == 302
    with pytest.raises(KeyInvalid):
        key_authenticate(raw_key=plaintext)


@pytest.mark.parametrize("grace", [0, 300])
def test_rotate_action_shows_the_new_key_once(admin_client, make_key, grace):
    key, old_plaintext = make_key()
    data = {"action": "rotate_selected", "_selected_action": [str(key.pk)]}
    confirm = admin_client.post(LIST_URL, data)
    assert "Grace period" in confirm.content.decode()
    response = admin_client.post(LIST_URL, {**data, "confirm": "yes", "grace_seconds": str(grace)})
    assert response.status_code == 200 and "no-store" in response["Cache-Control"]
    (new_plaintext,) = set(PLAINTEXT_RE.findall(response.content.decode()))
    new_key = APIKey.objects.get(rotated_from=key)
    assert key_authenticate(raw_key=new_plaintext).id == new_key.pk
    assert set(new_key.upstreams.all()) == set(key.upstreams.all())
    if grace:
        assert key_authenticate(raw_key=old_plaintext).id == key.pk
        key.refresh_from_db()
        assert 299 <= (key.revoked_at - timezone.now()).total_seconds() <= 300
    else:
        with pytest.raises(KeyInvalid):
            key_authenticate(raw_key=old_plaintext)
    assert new_plaintext not in _every_page(admin_client, new_key)
    assert rows_containing(new_plaintext) == []


def test_rotate_page_validates_the_grace_and_refuses_revoked_keys(admin_client, make_key):
    key, _ = make_key()
    url = reverse("admin:keys_apikey_rotate", args=[key.pk])
    bad = admin_client.post(url, {"grace_seconds": "-5"})
    assert (
        bad.status_code == 200 and "Must be between 0 and 2592000 seconds" in bad.content.decode()
    )
    assert not APIKey.objects.filter(rotated_from=key).exists()
    admin_client.post(reverse("admin:keys_apikey_revoke", args=[key.pk]), {"confirm": "yes"})
    refused = admin_client.post(url, {"grace_seconds": "0"}, follow=True)
    assert "is revoked; only a working key can be rotated" in refused.content.decode()
    assert not APIKey.objects.filter(rotated_from=key).exists()


def test_keys_cannot_be_deleted(admin_client, make_key):
    key, _ = make_key()
    assert (
        admin_client.post(
            reverse("admin:keys_apikey_delete", args=[key.pk]), {"post": "yes"}
        ).status_code
        == 403
    )
    assert "delete_selected" not in admin_client.get(LIST_URL).content.decode()


def test_the_list_query_count_does_not_grow_with_rows(
    admin_client, make_key, make_upstream, django_assert_max_num_queries
):
    upstreams = [make_upstream() for _ in range(3)]
    for i in range(15):
        make_key(upstreams=upstreams, name=f"k{i}")
    with django_assert_max_num_queries(10):
        assert admin_client.get(LIST_URL).status_code == 200
