"""Key limits on the admin API: written on POST/PATCH, read back with the window's spend,
and kept by a rotated key."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from gatewaysite.tests.admin_api import assert_error
from limits import windows
from limits.counters import Demand, counters_admit
from limits.selectors import limits_policy_for_key
from testing.helpers import remember_secret

pytestmark = pytest.mark.django_db

NO_SPEND = {
    "spent_usd": None,
    "spent_tokens": None,
    "reserved_usd": None,
    "reserved_tokens": None,
    "remaining_usd": None,
    "remaining_tokens": None,
}


def create(api, upstream, **fields):
    response = api.post(
        "/admin/keys", {"name": "k", "upstream_ids": [str(upstream.pk)], **fields}, format="json"
    )
    if response.status_code == 201:
        remember_secret(response.json()["key"])
    return response


def test_a_key_without_limits_reads_nulls_and_a_monthly_window(api, make_upstream):
    body = create(api, make_upstream()).json()
    assert [body[f] for f in ("rpm_limit", "tpm_limit", "max_parallel")] == [None] * 3
    assert (body["budget_usd"], body["budget_tokens"], body["budget_period"]) == (
        None,
        None,
        "month",
    )
    start = windows.window_start("month", timezone.now())
    assert body["spend"] == {
        "period": "month",
        "window_start": start.isoformat().replace("+00:00", "Z"),
        "resets_at": windows.window_end("month", timezone.now()).isoformat().replace("+00:00", "Z"),
        **NO_SPEND,
    }


def test_limits_set_on_create_are_read_back_with_the_spend(api, make_upstream):
    body = create(
        api,
        make_upstream(),
        rpm_limit=60,
        tpm_limit=10000,
        max_parallel=4,
        budget_usd="12.50",
        budget_tokens=100000,
        budget_period="week",
    ).json()
    assert (body["rpm_limit"], body["tpm_limit"], body["max_parallel"]) == (60, 10000, 4)
    assert body["budget_usd"] == "12.5000000000"
    assert (body["budget_tokens"], body["budget_period"]) == (100000, "week")
    spend = api.get(f"/admin/keys/{body['id']}").json()["spend"]
    assert spend["period"] == "week"
    assert spend["spent_tokens"] == 0 and spend["reserved_tokens"] == 0
    assert spend["remaining_tokens"] == 100000
    assert spend["spent_usd"] == "0E-10" or float(spend["spent_usd"]) == 0
    assert float(spend["remaining_usd"]) == 12.5
    listed = api.get("/admin/keys").json()["items"]
    assert listed[0]["rpm_limit"] == 60 and listed[0]["spend"]["period"] == "week"


def test_patch_changes_only_the_given_limits_and_null_removes_one(api, make_upstream):
    key_id = create(api, make_upstream(), rpm_limit=5, max_parallel=2).json()["id"]
    body = api.patch(f"/admin/keys/{key_id}", {"rpm_limit": None, "budget_tokens": 900}).json()
    assert (body["rpm_limit"], body["max_parallel"], body["budget_tokens"]) == (None, 2, 900)
    assert body["spend"]["remaining_tokens"] == 900
    assert api.get(f"/admin/keys/{key_id}").json()["rpm_limit"] is None


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("rpm_limit", -1),
        ("rpm_limit", "ten"),
        ("max_parallel", 1.5),
        ("budget_usd", "-1"),
        ("budget_usd", "lots"),
        ("budget_tokens", -5),
        ("budget_period", "year"),
    ],
)
def test_an_invalid_limit_is_a_400_naming_the_field_and_creates_nothing(
    api, make_upstream, field, value
):
    from keys.models import APIKey

    response = create(api, make_upstream(), **{field: value})
    assert_error(response, 400, "validation_error")
    assert field in response.json()["details"]
    assert not APIKey.objects.exists()


def test_a_rotated_key_keeps_the_limits_and_what_was_spent_and_reserved(api, make_upstream):
    key_id = create(api, make_upstream(), budget_tokens=1000, max_parallel=3).json()["id"]
    policy = limits_policy_for_key(key_id=key_id)
    now = timezone.now()
    counters_admit(
        policy=policy,
        demand=Demand(
            tokens=300,
            usd=None,
            window_start=windows.window_start("month", now),
            resets_at=windows.window_end("month", now),
        ),
        hold_seconds=600,
    )
    rotated = api.post(f"/admin/keys/{key_id}/rotate", {"grace_seconds": 60}).json()
    remember_secret(rotated["key"])
    assert (rotated["budget_tokens"], rotated["max_parallel"]) == (1000, 3)
    assert rotated["spend"]["reserved_tokens"] == 300
    assert rotated["spend"]["remaining_tokens"] == 700
    # One lineage: a change on the new key is the old key's too (it still works in grace).
    api.patch(f"/admin/keys/{rotated['id']}", {"budget_tokens": 2000})
    assert api.get(f"/admin/keys/{key_id}").json()["budget_tokens"] == 2000
    assert limits_policy_for_key(key_id=key_id).id == limits_policy_for_key(key_id=rotated["id"]).id


def test_limits_set_after_a_rotation_reach_the_key_still_in_grace(api, make_upstream):
    key_id = create(api, make_upstream()).json()["id"]
    rotated = api.post(f"/admin/keys/{key_id}/rotate", {"grace_seconds": 60}).json()
    remember_secret(rotated["key"])
    api.patch(f"/admin/keys/{rotated['id']}", {"rpm_limit": 7})
    assert api.get(f"/admin/keys/{key_id}").json()["rpm_limit"] == 7


def test_resets_at_is_null_for_a_total_budget(api, make_upstream):
    body = create(api, make_upstream(), budget_tokens=10, budget_period="total").json()
    assert body["spend"]["resets_at"] is None
    assert dt.datetime.fromisoformat(body["spend"]["window_start"]).year == 1970


def test_the_admin_site_sets_limits_and_shows_the_windows_spend_with_a_bar(admin_client, make_key):
    from django.urls import reverse

    key, _ = make_key()
    url = reverse("admin:keys_apikey_change", args=[key.pk])
    page = admin_client.get(url).content.decode()
    assert "Limits and budget" in page and "No budget set." in page
    form = {
        "name": key.name,
        "description": "",
        "upstreams": [str(u.pk) for u in key.upstreams.all()],
        "rpm_limit": "30",
        "budget_tokens": "1000",
        "budget_period": "day",
    }
    assert admin_client.post(url, form).status_code == 302
    policy = limits_policy_for_key(key_id=key.pk)
    assert (policy.rpm_limit, policy.budget_tokens, policy.budget_period) == (30, 1000, "day")
    now = timezone.now()
    counters_admit(
        policy=policy,
        demand=Demand(
            tokens=250,
            usd=None,
            window_start=windows.window_start("day", now),
            resets_at=windows.window_end("day", now),
        ),
        hold_seconds=600,
    )
    page = admin_client.get(url).content.decode()
    assert "Tokens: 0 spent, 250 reserved of 1000" in page
    assert 'role="progressbar"' in page
    assert 'value="30"' in page  # the form shows the limit as set


# One range per limit, whichever surface sets it: just past the top of each (a 32-bit
# column on PostgreSQL for the first two; SQLite's integers end at 2**63 - 1).
OUT_OF_RANGE = [
    ("rpm_limit", 2**31, 2**31 - 1),
    ("max_parallel", 3_000_000_000, 2**31 - 1),
    ("tpm_limit", 2**62 + 1, 2**62),
    ("budget_tokens", 10**20, 2**62),
]


@pytest.mark.parametrize(("field", "value", "top"), OUT_OF_RANGE)
def test_a_limit_past_its_range_is_refused_alike_by_the_api_and_the_admin_site(
    api, admin_client, make_key, field, value, top
):
    from django.urls import reverse

    key, _ = make_key()
    response = api.patch(f"/admin/keys/{key.pk}", {field: value}, format="json")
    assert_error(response, 400, "validation_error")
    assert field in response.json()["details"]
    form = {
        "name": key.name,
        "description": "",
        "upstreams": [str(u.pk) for u in key.upstreams.all()],
        "budget_period": "month",
        field: str(value),
    }
    page = admin_client.post(reverse("admin:keys_apikey_change", args=[key.pk]), form)
    assert page.status_code == 200  # the form again, not a 500 nor a saved key
    assert f"Must be a whole number from 0 to {top}." in page.content.decode()
    assert limits_policy_for_key(key_id=key.pk) is None
    # The top of the range itself is accepted by both.
    assert api.patch(f"/admin/keys/{key.pk}", {field: top}, format="json").status_code == 200
    form[field] = str(top - 1)
    assert (
        admin_client.post(reverse("admin:keys_apikey_change", args=[key.pk]), form).status_code
        == 302
    )
    assert getattr(limits_policy_for_key(key_id=key.pk), field) == top - 1


@pytest.mark.parametrize(("field", "value", "top"), OUT_OF_RANGE)
def test_limits_set_refuses_a_limit_past_its_range_whoever_calls_it(make_key, field, value, top):
    from limits.exceptions import InvalidLimits
    from limits.services import limits_set

    key, _ = make_key()
    with pytest.raises(InvalidLimits) as refused:
        limits_set(key=key, **{field: value})
    assert refused.value.errors == {field: [f"Must be a whole number from 0 to {top}."]}
    assert limits_policy_for_key(key_id=key.pk) is None
