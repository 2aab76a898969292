"""A write means the same from every surface: the admin site, the admin API and the import
command call the same upstreams services, so each action leaves the same upstream, the same
refusal and the same one history entry, whoever asked (only the entry's user differs)."""

from __future__ import annotations

import io
import json

import pytest
from django.contrib.admin.models import ADDITION, CHANGE, LogEntry
from django.core.management import call_command
from django.urls import reverse

from testing.helpers import remember_secret
from upstreams import crypto
from upstreams.models import Upstream

pytestmark = pytest.mark.django_db

SURFACE_USER = {"admin site": "admin", "admin API": "admin-api", "command": "manage-py"}
SECRET = remember_secret("sk-agreed-provider-secret-5555")
NEW_SECRET = remember_secret("sk-agreed-provider-secret-7777")
FIELDS = {
    "name": "agreed",
    "provider": "openai",
    "base_url": "https://api.example.com/v1/",  # stored without the trailing slash
    "api_key": SECRET,
    "timeout": 12.5,
    "models": ["gpt-4o", "gpt-4.1*"],
    "aliases": {"fast": "gpt-4o"},
    "priority": 2,
    "weight": 3,
}


def history(upstream: Upstream) -> list[tuple[str, int, str]]:
    """Every history entry of the upstream except the test factory's own."""
    entries = LogEntry.objects.filter(object_id=str(upstream.pk)).exclude(user__username="tests")
    return [
        (e.user.username, e.action_flag, e.get_change_message()) for e in entries.order_by("pk")
    ]


def outcome(upstream: Upstream) -> tuple:
    upstream.refresh_from_db()
    return (
        upstream.name,
        upstream.base_url,
        crypto.decrypt(upstream.secret_encrypted),
        upstream.secret_hint,
        upstream.timeout,
        upstream.models,
        upstream.aliases,
        upstream.priority,
        upstream.weight,
        upstream.is_active,
    )


def admin_form(upstream: Upstream | None = None, **changes) -> dict:
    """The admin form as an operator submits it: the upstream's values (or FIELDS), changed."""
    values = dict(FIELDS, api_key="") if upstream is None else {
        "name": upstream.name, "provider": upstream.provider, "base_url": upstream.base_url,
        "api_key": "", "timeout": upstream.timeout, "models": upstream.models,
        "aliases": upstream.aliases, "priority": upstream.priority, "weight": upstream.weight,
    }  # fmt: skip
    values |= changes
    form = {
        **{k: "" if v is None else v for k, v in values.items() if k not in ("models", "aliases")},
        "models": json.dumps(values["models"]),
        "aliases": json.dumps(values["aliases"]),
        "inject_stream_usage": "on",
    }
    if upstream is not None:
        form["is_active"] = "on"
    return form


# --- each surface, translating one action ------------------------------------------


def create_on(surface: str, clients, tmp_path, fields: dict) -> str:
    """Create through a surface; return what it said."""
    match surface:
        case "admin site":
            form = admin_form(**fields)
            response = clients.admin.post(reverse("admin:upstreams_upstream_add"), form)
            return response.content.decode() or response["Location"]
        case "admin API":
            return clients.api.post("/admin/upstreams", fields, format="json").content.decode()
        case "command":
            path = tmp_path / "upstreams.json"
            path.write_text(json.dumps([fields]))
            out = io.StringIO()
            call_command("import_upstreams", "--file", str(path), stdout=out)
            return out.getvalue()
    raise AssertionError(surface)


def update_on(surface: str, clients, upstream: Upstream, **changes) -> int:
    if surface == "admin site":
        url = reverse("admin:upstreams_upstream_change", args=[upstream.pk])
        return clients.admin.post(url, admin_form(upstream, **changes)).status_code
    return clients.api.patch(f"/admin/upstreams/{upstream.pk}", changes, format="json").status_code


def deactivate_on(surface: str, clients, upstream: Upstream) -> None:
    if surface == "admin site":
        action = {"action": "deactivate_selected", "_selected_action": [str(upstream.pk)]}
        url = reverse("admin:upstreams_upstream_changelist")
        assert clients.admin.post(url, action).status_code == 302
    else:
        assert clients.api.delete(f"/admin/upstreams/{upstream.pk}").status_code == 204


@pytest.fixture
def clients(admin_client, api):
    class Clients:
        pass

    c = Clients()
    c.admin, c.api = admin_client, api
    return c


# --- the table ----------------------------------------------------------------------


@pytest.mark.parametrize("surface", ["admin site", "admin API", "command"])
def test_a_creation_is_the_same_from_every_surface(surface, clients, tmp_path):
    create_on(surface, clients, tmp_path, FIELDS)
    upstream = Upstream.objects.get(name="agreed")
    assert outcome(upstream) == (
        "agreed", "https://api.example.com/v1", SECRET, "sk-***5555", 12.5,
        ["gpt-4o", "gpt-4.1*"], {"fast": "gpt-4o"}, 2, 3, True,
    )  # fmt: skip
    assert history(upstream) == [(SURFACE_USER[surface], ADDITION, "Added.")]


@pytest.mark.parametrize("surface", ["admin site", "admin API"])
def test_a_change_with_a_new_secret_is_the_same_from_every_surface(surface, clients, make_upstream):
    upstream = make_upstream(name="agreed", api_key=SECRET, timeout=10)
    assert update_on(surface, clients, upstream, api_key=NEW_SECRET, timeout=30) in (200, 302)
    assert outcome(upstream)[2:5] == (NEW_SECRET, "sk-***7777", 30)
    # Names the fields, never the values; the fields left as they were are not named.
    assert history(upstream) == [(SURFACE_USER[surface], CHANGE, "Changed api_key and timeout.")]


@pytest.mark.parametrize("surface", ["admin site", "admin API"])
def test_a_change_that_changes_nothing_records_nothing(surface, clients, make_upstream):
    upstream = make_upstream(name="agreed")
    assert update_on(surface, clients, upstream, name="agreed") in (200, 302)
    assert history(upstream) == []


@pytest.mark.parametrize("surface", ["admin site", "admin API"])
def test_a_deactivation_is_the_same_from_every_surface(surface, clients, make_upstream):
    upstream = make_upstream()
    deactivate_on(surface, clients, upstream)
    assert outcome(upstream)[-1] is False
    assert history(upstream) == [(SURFACE_USER[surface], CHANGE, "Deactivated.")]
    deactivate_on(surface, clients, upstream)  # again: nothing changes, nothing recorded
    assert len(history(upstream)) == 1


@pytest.mark.parametrize("surface", ["admin site", "admin API"])
def test_a_taken_name_is_refused_from_every_surface(surface, clients, tmp_path, make_upstream):
    make_upstream(name="agreed")
    said = create_on(surface, clients, tmp_path, FIELDS)
    assert "already exists" in said
    assert Upstream.objects.filter(name="agreed").count() == 1
    assert not LogEntry.objects.exclude(user__username="tests").exists()


def test_an_import_records_each_new_upstream_and_leaves_existing_ones_alone(
    clients, tmp_path, make_upstream
):
    kept = make_upstream(name="kept", api_key=SECRET)
    other = dict(FIELDS, name="kept", api_key=NEW_SECRET)
    path = tmp_path / "upstreams.json"
    path.write_text(json.dumps([FIELDS, dict(FIELDS, name="second"), other]))
    call_command("import_upstreams", "--file", str(path), stdout=io.StringIO())
    for name in ("agreed", "second"):
        assert history(Upstream.objects.get(name=name)) == [("manage-py", ADDITION, "Added.")]
    assert history(kept) == [] and outcome(kept)[2] == SECRET


def test_the_admin_answers_with_the_saved_upstream(clients):
    """After an add, the admin's redirect and message point at the row the service made."""
    form = admin_form(**FIELDS) | {"_continue": "Save and continue editing"}
    response = clients.admin.post(reverse("admin:upstreams_upstream_add"), form, follow=True)
    upstream = Upstream.objects.get(name="agreed")
    change = reverse("admin:upstreams_upstream_change", args=[upstream.pk])
    assert response.redirect_chain == [(change, 302)]
    assert f'<a href="{change}">agreed</a>' in response.content.decode()
