"""The admin API for prices: create, list, get, replace, change, delete, errors, and that
a change prices the next request on every worker (the version stamp) and no row before."""

from __future__ import annotations

import uuid
from decimal import Decimal

import pytest

from gatewaysite.tests.admin_api import assert_error, assert_page
from prices.cost import Rates
from prices.models import Price, PriceTableVersion
from prices.selectors import price_for

pytestmark = pytest.mark.django_db

PRICE_FIELDS = {"id", "model", "upstream_id", "input", "output", "cache_read", "cache_write",
                "created_at", "updated_at"}  # fmt: skip


def test_create_answers_the_price_with_decimal_strings(api):
    response = api.post(
        "/admin/prices",
        {"model": "gpt-4o", "input": "2.50", "output": "10", "cache_read": "1.25"},
        format="json",
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert set(body) == PRICE_FIELDS
    assert (body["model"], body["upstream_id"]) == ("gpt-4o", None)
    assert (body["input"], body["output"]) == ("2.500000", "10.000000")
    assert (body["cache_read"], body["cache_write"]) == ("1.250000", None)
    assert api.get(f"/admin/prices/{body['id']}").json() == body


def test_a_price_for_one_upstream(api, make_upstream):
    upstream = make_upstream()
    response = api.post(
        "/admin/prices",
        {"model": "claude-*", "upstream_id": str(upstream.pk), "input": "3", "output": "15"},
        format="json",
    )
    assert response.status_code == 201, response.content
    assert response.json()["upstream_id"] == str(upstream.pk)
    rates = price_for(model="claude-3-5-sonnet", upstream_id=upstream.pk)
    assert rates == Rates.resolve(input=Decimal(3), output=Decimal(15))
    assert price_for(model="claude-3-5-sonnet", upstream_id=None) is None


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"input": "1", "output": "2"}, "model"),
        ({"model": "", "input": "1", "output": "2"}, "model"),
        ({"model": "m", "output": "2"}, "input"),
        ({"model": "m", "input": "-1", "output": "2"}, "input"),
        ({"model": "m", "input": "abc", "output": "2"}, "input"),
        ({"model": "m", "input": "1.0000001", "output": "2"}, "input"),
        ({"model": "m", "input": 1, "output": "2"}, "input"),  # a string, as the schema says
        ({"model": "m", "input": "", "output": "2"}, "input"),
        ({"model": "m", "input": "1", "output": "2", "cache_write": "-0.5"}, "cache_write"),
        ({"model": "m", "input": "1", "output": "2", "upstream_id": "nope"}, "upstream_id"),
        ({"model": "m", "input": "1", "output": "2", "upstream_id": str(uuid.uuid4())},
         "upstream_id"),
    ],
)  # fmt: skip
def test_bad_bodies_are_400_with_the_field(api, body, field):
    error = assert_error(api.post("/admin/prices", body, format="json"), 400, "validation_error")
    assert field in error["details"]
    assert Price.objects.count() == 0


def test_a_second_price_for_the_same_model_and_upstream_is_refused(api):
    assert api.post("/admin/prices", {"model": "m", "input": "1", "output": "2"},
                    format="json").status_code == 201  # fmt: skip
    error = assert_error(
        api.post("/admin/prices", {"model": "m", "input": "3", "output": "4"}, format="json"),
        409,
        "conflict",
    )
    assert "model" in error["details"]
    assert Price.objects.get().input == Decimal(1)


def test_changes_apply_to_the_next_lookup_and_delete_removes_the_price(api):
    created = api.post("/admin/prices", {"model": "gpt-*", "input": "1", "output": "2"},
                       format="json").json()  # fmt: skip
    assert price_for(model="gpt-4o", upstream_id=None).output == Decimal(2)
    version = PriceTableVersion.current()
    changed = api.patch(f"/admin/prices/{created['id']}", {"output": "4"}, format="json")
    assert changed.status_code == 200 and changed.json()["output"] == "4.000000"
    assert PriceTableVersion.current() != version
    assert price_for(model="gpt-4o", upstream_id=None).output == Decimal(4)
    replaced = api.put(f"/admin/prices/{created['id']}",
                       {"model": "gpt-4o", "input": "5", "output": "6"}, format="json")  # fmt: skip
    assert replaced.status_code == 200
    assert price_for(model="gpt-4o-mini", upstream_id=None) is None
    assert price_for(model="gpt-4o", upstream_id=None).input == Decimal(5)
    assert api.delete(f"/admin/prices/{created['id']}").status_code == 204
    assert price_for(model="gpt-4o", upstream_id=None) is None
    assert_error(api.get(f"/admin/prices/{created['id']}"), 404, "not_found")


def test_the_list_is_paged_and_filtered(api, make_upstream):
    upstream = make_upstream()
    for name in ("a", "b", "c"):
        api.post("/admin/prices", {"model": name, "input": "1", "output": "1"}, format="json")
    api.post("/admin/prices", {"model": "a", "upstream_id": str(upstream.pk), "input": "1",
                               "output": "1"}, format="json")  # fmt: skip
    items = assert_page(api.get("/admin/prices"), total=4)
    assert [i["model"] for i in items] == ["a", "c", "b", "a"]  # newest first
    assert len(assert_page(api.get("/admin/prices?model=a"), total=2)) == 2
    only = assert_page(api.get(f"/admin/prices?upstream_id={upstream.pk}"), total=1)
    assert only[0]["upstream_id"] == str(upstream.pk)
    assert_error(api.get("/admin/prices?upstream_id=x"), 400, "validation_error")
