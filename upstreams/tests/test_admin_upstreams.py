"""The upstream pages of the admin site: a write-only secret, defaults, soft delete."""

import re

import pytest
from django.contrib.admin.models import LogEntry
from django.urls import reverse

from gatewaysite.tests.adminsite import rows_containing
from upstreams import crypto
from upstreams.exceptions import UpstreamUnavailable
from upstreams.models import Upstream
from upstreams.selectors import upstream_choose

pytestmark = pytest.mark.django_db

SECRET = "sk-live-admin-form-secret-9876"
ADD_URL = reverse("admin:upstreams_upstream_add")
LIST_URL = reverse("admin:upstreams_upstream_changelist")


def _change_url(upstream):
    return reverse("admin:upstreams_upstream_change", args=[upstream.pk])


def _form(**overrides):
    data = {
        "name": "openai-main",
        "provider": "openai",
        "base_url": "https://api.openai.com/v1/",
        "api_key": SECRET,
        "timeout": "",
    }
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


def _secret_inputs(html: str) -> list[str]:
    return re.findall(r'<input[^>]*name="api_key"[^>]*>', html)


def test_adding_an_upstream_stores_the_secret_encrypted_and_routes_it(admin_client):
    response = admin_client.post(ADD_URL, _form(is_default="on"))
    assert response.status_code == 302
    upstream = Upstream.objects.get(name="openai-main")
    assert upstream.base_url == "https://api.openai.com/v1"  # normalized like the API does
    assert upstream.secret_hint == "sk-***9876"
    assert crypto.decrypt(upstream.secret_encrypted) == SECRET
    assert rows_containing(SECRET) == []
    route = upstream_choose(upstream_ids={upstream.pk}, requested_name=None, dialect="openai")
    assert route.name == "openai-main" and route.secret == SECRET


def test_a_base_url_without_version_segment_is_saved_with_a_warning(admin_client):
    response = admin_client.post(ADD_URL, _form(base_url="https://api.openai.com"), follow=True)
    assert response.status_code == 200
    shown = [str(m) for m in response.context["messages"]]
    assert any("has no version segment" in m and "https://api.openai.com/v1" in m for m in shown)
    assert Upstream.objects.get(name="openai-main").base_url == "https://api.openai.com"
    response = admin_client.post(ADD_URL, _form(name="with-v1"), follow=True)
    assert not any("version segment" in str(m) for m in response.context["messages"])


def test_the_list_shows_the_hint_and_never_the_secret(admin_client):
    admin_client.post(ADD_URL, _form())
    html = admin_client.get(LIST_URL).content.decode()
    assert "sk-***9876" in html
    assert "https://api.openai.com/v1" in html
    assert SECRET not in html


def test_the_change_form_never_renders_the_secret_back(admin_client):
    admin_client.post(ADD_URL, _form())
    upstream = Upstream.objects.get(name="openai-main")
    html = admin_client.get(_change_url(upstream)).content.decode()
    (field,) = _secret_inputs(html)
    assert 'type="password"' in field
    assert "value=" not in field
    assert 'autocomplete="new-password"' in field
    assert SECRET not in html and upstream.secret_encrypted not in html
    assert "sk-***9876" in html  # the hint says which secret is in place


def test_a_form_with_errors_does_not_echo_the_secret(admin_client):
    response = admin_client.post(ADD_URL, _form(base_url="ftp://user:pw@example.com"))
    assert response.status_code == 200
    html = response.content.decode()
    assert "Scheme must be http or https." in html
    assert "Must not contain credentials." in html
    assert SECRET not in html
    assert "value=" not in _secret_inputs(html)[0]
    assert not Upstream.objects.exists()


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("name", "UPPER-case", "Must be a slug"),
        ("timeout", "0", "Must be greater than 0"),
        ("api_key", "", "This field is required."),
        ("base_url", "https://example.com/v1?x=1", "Must not contain a query string."),
    ],
)
def test_the_admin_applies_the_same_rules_as_the_api(admin_client, field, value, message):
    response = admin_client.post(ADD_URL, _form(**{field: value}))
    assert response.status_code == 200
    assert message in response.content.decode()
    assert not Upstream.objects.exists()


def test_a_duplicate_name_is_a_form_error(admin_client, make_upstream):
    make_upstream(name="openai-main")
    response = admin_client.post(ADD_URL, _form())
    assert response.status_code == 200
    assert "already exists" in response.content.decode()


def test_an_empty_secret_on_change_keeps_the_current_one(admin_client, make_upstream):
    upstream = make_upstream(name="keep", api_key=SECRET)
    data = _form(name="keep", api_key="", base_url="http://127.0.0.1:9/v1", is_active="on")
    response = admin_client.post(_change_url(upstream), data)
    assert response.status_code == 302
    upstream.refresh_from_db()
    assert crypto.decrypt(upstream.secret_encrypted) == SECRET


def test_a_new_secret_on_change_replaces_the_old_one(admin_client, make_upstream):
    upstream = make_upstream(name="swap", api_key=SECRET)
    new_secret = "sk-rotated-provider-secret-1111"
    data = _form(name="swap", api_key=new_secret, is_active="on", inject_stream_usage="on",
                 base_url=upstream.base_url)  # fmt: skip
    assert admin_client.post(_change_url(upstream), data).status_code == 302
    upstream.refresh_from_db()
    assert crypto.decrypt(upstream.secret_encrypted) == new_secret
    assert upstream.secret_hint == "sk-***1111"
    route = upstream_choose(upstream_ids={upstream.pk}, requested_name="swap", dialect="openai")
    assert route.secret == new_secret
    assert rows_containing(new_secret) == []
    # The history names the changed field, never its value.
    entry = LogEntry.objects.exclude(user__username="tests").get(object_id=str(upstream.pk))
    assert entry.get_change_message() == "Changed api_key."


def test_making_one_upstream_default_clears_the_previous_default(admin_client, make_upstream):
    first = make_upstream(name="first", is_default=True)
    second = make_upstream(name="second")
    data = _form(
        name="second", api_key="", is_default="on", is_active="on", base_url=second.base_url
    )
    response = admin_client.post(_change_url(second), data)
    assert response.status_code == 302, response.content.decode()
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.is_default, second.is_default) == (False, True)


def test_deactivate_action_soft_deletes_and_stops_routing(admin_client, make_upstream):
    upstream = make_upstream(name="retire")
    response = admin_client.post(
        LIST_URL, {"action": "deactivate_selected", "_selected_action": [str(upstream.pk)]}
    )
    assert response.status_code == 302
    upstream.refresh_from_db()
    assert upstream.is_active is False
    with pytest.raises(UpstreamUnavailable):
        upstream_choose(upstream_ids={upstream.pk}, requested_name="retire", dialect="openai")
    assert "Deactivated 1 upstream" in admin_client.get(LIST_URL).content.decode()


def test_upstreams_cannot_be_hard_deleted(admin_client, make_upstream):
    upstream = make_upstream()
    delete_url = reverse("admin:upstreams_upstream_delete", args=[upstream.pk])
    assert admin_client.post(delete_url, {"post": "yes"}).status_code == 403
    html = admin_client.get(LIST_URL).content.decode()
    assert "delete_selected" not in html
    assert Upstream.objects.filter(pk=upstream.pk).exists()


def test_the_list_query_count_does_not_grow_with_rows(
    admin_client, make_upstream, django_assert_max_num_queries
):
    for _ in range(12):
        make_upstream()
    with django_assert_max_num_queries(8):
        assert admin_client.get(LIST_URL).status_code == 200
