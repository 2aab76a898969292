"""A write means the same from every surface: the admin site, the admin API and the command
call the same keys services, so each action leaves the same key, the same refusal and the
same one history entry, whoever asked (only the entry's user differs)."""

from __future__ import annotations

import datetime as dt
import io

import pytest
from django.contrib.admin.models import ADDITION, CHANGE, LogEntry
from django.core.management import CommandError, call_command
from django.urls import reverse
from django.utils import timezone

from keys.models import APIKey, KeyStatus
from testing.helpers import remember_secret

pytestmark = pytest.mark.django_db

SURFACE_USER = {"admin site": "admin", "admin API": "admin-api", "command": "manage-py"}


def history(key: APIKey) -> list[tuple[str, int, str]]:
    """Every history entry of the key except the test factory's own."""
    entries = LogEntry.objects.filter(object_id=str(key.pk)).exclude(user__username="tests")
    return [(e.user.username, e.action_flag, e.change_message) for e in entries.order_by("pk")]


# --- each surface, translating one action ------------------------------------------


def rotate_on(surface: str, clients, key: APIKey, grace: int) -> str:
    """Rotate through a surface; return what it said (the refusal's text, if refused)."""
    match surface:
        case "admin site":
            url = reverse("admin:keys_apikey_rotate", args=[key.pk])
            page = clients.admin.post(url, {"grace_seconds": str(grace)}, follow=True)
            return page.content.decode()
        case "admin API":
            answer = clients.api.post(
                f"/admin/keys/{key.pk}/rotate", {"grace_seconds": grace}, format="json"
            )
            if answer.status_code == 201:
                remember_secret(answer.json()["key"])
            return answer.json().get("message", "")
        case "command":
            out, err = io.StringIO(), io.StringIO()
            try:
                call_command("rotate_api_key", str(key.pk), "--grace-seconds", str(grace),
                             stdout=out, stderr=err)  # fmt: skip
            except CommandError as exc:
                return str(exc)
            remember_secret(out.getvalue().strip())
            return err.getvalue()
    raise AssertionError(surface)


def revoke_on(surface: str, clients, key: APIKey) -> None:
    if surface == "admin site":
        url = reverse("admin:keys_apikey_revoke", args=[key.pk])
        assert clients.admin.post(url, {"confirm": "yes"}).status_code == 302
    else:
        assert clients.api.delete(f"/admin/keys/{key.pk}").status_code == 204


def create_on(surface: str, clients, upstream, *, expires_at: dt.datetime | None) -> str:
    if surface == "admin site":
        data = {"name": "agreed", "description": "", "upstreams": [str(upstream.pk)]}
        if expires_at is not None:
            local = timezone.localtime(expires_at)
            data |= {"expires_at_0": f"{local:%Y-%m-%d}", "expires_at_1": f"{local:%H:%M:%S}"}
        return clients.admin.post(reverse("admin:keys_apikey_add"), data).content.decode()
    body = {"name": "agreed", "upstream_ids": [str(upstream.pk)]}
    if expires_at is not None:
        body["expires_at"] = expires_at.isoformat()
    answer = clients.api.post("/admin/keys", body, format="json")
    if answer.status_code == 201:
        remember_secret(answer.json()["key"])
    return answer.content.decode()


@pytest.fixture
def clients(admin_client, api):
    class Clients:
        pass

    c = Clients()
    c.admin, c.api = admin_client, api
    return c


# --- the table ----------------------------------------------------------------------


@pytest.mark.parametrize("surface", ["admin site", "admin API", "command"])
@pytest.mark.parametrize(
    ("grace", "old_status", "ends"),
    [(0, KeyStatus.REVOKED, "stops now"), (300, KeyStatus.GRACE, "works 300 s more")],
)
def test_a_rotation_is_the_same_from_every_surface(
    surface, grace, old_status, ends, clients, make_key
):
    key, _ = make_key(name="agreed")
    rotate_on(surface, clients, key, grace)
    new = APIKey.objects.get(rotated_from=key)
    key.refresh_from_db()
    assert (key.status(), new.status(), new.name) == (old_status, KeyStatus.ACTIVE, "agreed")
    assert history(key) == [
        (SURFACE_USER[surface], CHANGE, f"Rotated; replaced by {new.key_prefix}…; the old key {ends}.")
    ]  # fmt: skip
    assert history(new) == []


@pytest.mark.parametrize("surface", ["admin site", "admin API", "command"])
def test_a_key_in_grace_is_not_rotated_again_from_any_surface(surface, clients, make_key):
    key, _ = make_key()
    rotate_on("admin API", clients, key, 300)
    successor = APIKey.objects.get(rotated_from=key)
    before = history(key)
    said = rotate_on(surface, clients, key, 300)
    assert f"rotate its successor {successor.key_prefix}… instead" in said
    assert APIKey.objects.filter(rotated_from=key).count() == 1
    key.refresh_from_db()
    assert key.status() == KeyStatus.GRACE and history(key) == before


@pytest.mark.parametrize("surface", ["admin site", "admin API", "command"])
def test_a_grace_past_30_days_is_refused_from_every_surface(surface, clients, make_key):
    key, _ = make_key()
    said = rotate_on(surface, clients, key, 30 * 24 * 3600 + 1)
    assert "between 0 and 2592000 seconds" in said.lower() or "grace_seconds" in said
    assert not APIKey.objects.filter(rotated_from=key).exists() and history(key) == []


@pytest.mark.parametrize("surface", ["admin site", "admin API"])
def test_a_revocation_is_the_same_from_every_surface(surface, clients, make_key):
    key, _ = make_key()
    revoke_on(surface, clients, key)
    key.refresh_from_db()
    assert key.status() == KeyStatus.REVOKED
    assert history(key) == [(SURFACE_USER[surface], CHANGE, "Revoked.")]


@pytest.mark.parametrize("surface", ["admin site", "admin API"])
def test_a_creation_is_the_same_from_every_surface(surface, clients, make_upstream):
    soon = timezone.now() + dt.timedelta(days=1)
    create_on(surface, clients, make_upstream(), expires_at=soon)
    key = APIKey.objects.get(name="agreed")
    assert key.status() == KeyStatus.ACTIVE
    assert abs((key.expires_at - soon).total_seconds()) < 1
    assert [(u, flag) for u, flag, _ in history(key)] == [(SURFACE_USER[surface], ADDITION)]
    assert LogEntry.objects.get(object_id=str(key.pk)).get_change_message() == "Added."


@pytest.mark.parametrize("surface", ["admin site", "admin API"])
def test_an_expiry_in_the_past_is_refused_from_every_surface(surface, clients, make_upstream):
    said = create_on(
        surface, clients, make_upstream(), expires_at=timezone.now() - dt.timedelta(hours=1)
    )
    assert "Must be in the future." in said
    assert not APIKey.objects.exists()
    assert not LogEntry.objects.exclude(user__username="tests").exists()


# --- a key's limits, set together with the key ------------------------------------


def limits_of(key: APIKey) -> tuple:
    from limits.selectors import limits_policy_for_key

    policy = limits_policy_for_key(key_id=key.pk)
    return (
        None if policy is None else (policy.rpm_limit, policy.budget_tokens, policy.budget_period)
    )


@pytest.mark.parametrize("surface", ["admin site", "admin API"])
def test_a_key_is_created_and_changed_with_its_limits_the_same_from_every_surface(
    surface, clients, make_upstream
):
    upstream = make_upstream()
    if surface == "admin site":
        form = {"name": "agreed", "description": "", "upstreams": [str(upstream.pk)],
                "rpm_limit": "30", "budget_tokens": "1000", "budget_period": "day"}  # fmt: skip
        clients.admin.post(reverse("admin:keys_apikey_add"), form)
        key = APIKey.objects.get(name="agreed")
        form |= {"rpm_limit": "", "budget_tokens": "2000"}
        url = reverse("admin:keys_apikey_change", args=[key.pk])
        assert clients.admin.post(url, form).status_code == 302
    else:
        body = {"name": "agreed", "upstream_ids": [str(upstream.pk)], "rpm_limit": 30,
                "budget_tokens": 1000, "budget_period": "day"}  # fmt: skip
        remember_secret(clients.api.post("/admin/keys", body, format="json").json()["key"])
        key = APIKey.objects.get(name="agreed")
        change = {"rpm_limit": None, "budget_tokens": 2000}
        assert clients.api.patch(f"/admin/keys/{key.pk}", change, format="json").status_code == 200
    assert limits_of(key) == (None, 2000, "day")
    user = SURFACE_USER[surface]
    assert history(key) == [
        (user, ADDITION, '[{"added": {}}]'),
        (user, CHANGE, '[{"changed": {"fields": ["budget_tokens", "rpm_limit"]}}]'),
    ]


def test_the_keys_services_take_the_limits_in_the_same_transaction(make_upstream, make_key):
    from keys.services import key_create, key_update
    from limits.exceptions import InvalidLimits

    upstream = make_upstream()
    key, raw = key_create(actor="tests", name="limited", upstream_ids=[upstream.pk],
                          limits={"rpm_limit": 5, "budget_period": "week"})  # fmt: skip
    remember_secret(raw)
    assert limits_of(key) == (5, None, "week")
    key_update(actor="tests", key=key, name="renamed", limits={"budget_tokens": 9})
    assert limits_of(key) == (5, 9, "week")
    # A limit out of range refuses the whole action: no key, no rename, no history.
    with pytest.raises(InvalidLimits):
        key_create(actor="tests", name="refused", upstream_ids=[upstream.pk],
                   limits={"rpm_limit": 2**31})  # fmt: skip
    assert not APIKey.objects.filter(name="refused").exists()
    before = history(key)
    with pytest.raises(InvalidLimits):
        key_update(actor="tests", key=key, name="again", limits={"tpm_limit": 10**20})
    key.refresh_from_db()
    assert (key.name, limits_of(key), history(key)) == ("renamed", (5, 9, "week"), before)
