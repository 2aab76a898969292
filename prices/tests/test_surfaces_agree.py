"""A write means the same from every surface: the admin site, the admin API and import_prices
call the same prices services, so each action leaves the same price and the same one history
entry, whoever asked (only the entry's user differs)."""

from __future__ import annotations

import io
import json
from decimal import Decimal

import pytest
from django.contrib.admin.models import ADDITION, CHANGE, DELETION, LogEntry
from django.core.management import call_command
from django.urls import reverse

from prices.models import Price
from prices.services import price_create

pytestmark = pytest.mark.django_db

SURFACE_USER = {"admin site": "admin", "admin API": "admin-api", "command": "manage-py"}
RATES = {"input": "2.5", "output": "10", "cache_read": "1.25"}


def history(price_id) -> list[tuple[str, int, str]]:
    entries = LogEntry.objects.filter(object_id=str(price_id)).exclude(user__username="tests")
    return [
        (e.user.username, e.action_flag, e.get_change_message()) for e in entries.order_by("pk")
    ]


def outcome(price: Price) -> tuple:
    price.refresh_from_db()
    return (price.model, price.upstream_id, price.input, price.output, price.cache_read)


def write_on(surface: str, clients, tmp_path, price: Price | None, **values) -> int:
    """Add (price None) or change a price through a surface; return the status (0: command)."""
    match surface:
        case "admin site":
            form = {"model": "gpt-agreed", "upstream": "", "cache_read": "", "cache_write": ""}
            if price is not None:
                form |= {"model": price.model, "input": price.input, "output": price.output,
                         "cache_read": price.cache_read or ""}  # fmt: skip
            form |= values
            url = (
                reverse("admin:prices_price_add")
                if price is None
                else reverse("admin:prices_price_change", args=[price.pk])
            )
            return clients.admin.post(url, form).status_code
        case "admin API":
            if price is None:
                body = {"model": "gpt-agreed", **values}
                return clients.api.post("/admin/prices", body, format="json").status_code
            return clients.api.patch(f"/admin/prices/{price.pk}", values, format="json").status_code
        case "command":
            current = {} if price is None else {
                "input": str(price.input), "output": str(price.output),
                "cache_read": None if price.cache_read is None else str(price.cache_read),
            }  # fmt: skip
            path = tmp_path / "prices.json"
            path.write_text(json.dumps([{"model": "gpt-agreed", **current, **values}]))
            call_command("import_prices", str(path), stdout=io.StringIO())
            return 0
    raise AssertionError(surface)


@pytest.fixture
def clients(admin_client, api):
    class Clients:
        pass

    c = Clients()
    c.admin, c.api = admin_client, api
    return c


@pytest.mark.parametrize("surface", ["admin site", "admin API", "command"])
def test_a_new_price_is_the_same_from_every_surface(surface, clients, tmp_path):
    assert write_on(surface, clients, tmp_path, None, **RATES) in (0, 201, 302)
    price = Price.objects.get(model="gpt-agreed")
    assert outcome(price) == ("gpt-agreed", None, Decimal("2.5"), Decimal(10), Decimal("1.25"))
    assert history(price.pk) == [(SURFACE_USER[surface], ADDITION, "Added.")]


@pytest.mark.parametrize("surface", ["admin site", "admin API", "command"])
def test_a_change_is_the_same_from_every_surface(surface, clients, tmp_path):
    price = price_create(
        actor="tests", model="gpt-agreed", input=Decimal("2.5"), output=Decimal(10)
    )
    assert write_on(surface, clients, tmp_path, price, output="12", cache_read="1") in (0, 200, 302)
    assert outcome(price)[2:] == (Decimal("2.5"), Decimal(12), Decimal(1))
    assert history(price.pk) == [(SURFACE_USER[surface], CHANGE, "Changed cache_read and output.")]


@pytest.mark.parametrize("surface", ["admin site", "admin API"])
def test_a_deletion_is_the_same_from_every_surface(surface, clients):
    price = price_create(actor="tests", model="gpt-agreed", input=Decimal(1), output=Decimal(2))
    if surface == "admin site":
        url = reverse("admin:prices_price_delete", args=[price.pk])
        assert clients.admin.post(url, {"post": "yes"}).status_code == 302
    else:
        assert clients.api.delete(f"/admin/prices/{price.pk}").status_code == 204
    assert not Price.objects.exists()
    assert history(price.pk) == [(SURFACE_USER[surface], DELETION, "Deleted.")]


@pytest.mark.parametrize("surface", ["admin site", "admin API", "command"])
def test_writing_the_same_rates_again_records_nothing(surface, clients, tmp_path):
    price = price_create(actor="tests", model="gpt-agreed", input=Decimal(1), output=Decimal(2))
    write_on(surface, clients, tmp_path, price, input="1", output="2.000")
    assert history(price.pk) == []


def test_the_admin_answers_with_the_saved_price(clients):
    form = {"model": "gpt-agreed", "upstream": "", "_continue": "1", **RATES, "cache_write": ""}
    response = clients.admin.post(reverse("admin:prices_price_add"), form, follow=True)
    price = Price.objects.get(model="gpt-agreed")
    assert response.redirect_chain == [(reverse("admin:prices_price_change", args=[price.pk]), 302)]
