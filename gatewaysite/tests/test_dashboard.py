"""The admin site's dashboard: the gateway's name, its figures and their links, cheap queries."""

import datetime as dt
from decimal import Decimal

import pytest
from django.urls import reverse

pytestmark = pytest.mark.django_db

INDEX = reverse("admin:index")
# Measured 24 (sessions, rollup checks, four usage sums, the panels); a panel per row would be hundreds.
QUERIES = 26


def test_a_new_install_says_to_add_an_upstream_then_a_key(admin_client, make_upstream):
    html = admin_client.get(INDEX).content.decode()
    assert "LLM gateway" in html and "Django administration" not in html
    assert "Start here: add an upstream" in html
    assert reverse("admin:upstreams_upstream_add") in html
    make_upstream()
    html = admin_client.get(INDEX).content.decode()
    assert "Next: issue an API key" in html and reverse("admin:keys_apikey_add") in html


def test_view_site_leads_to_the_api_docs(admin_client):
    html = admin_client.get(INDEX).content.decode()
    assert '<a href="/docs">API docs</a>' in html


def test_figures_today_and_over_seven_days_with_their_links(
    admin_client, make_key, make_upstream, make_log_row
):
    upstream = make_upstream(name="up-main")
    key, _ = make_key(upstreams=[upstream], name="spender")
    now = dt.datetime.now(dt.UTC)
    row = {"key": key, "upstream": upstream}
    make_log_row(**row, model="gpt-4o", cost="1.50")
    make_log_row(**row, model="gpt-4o", status=502, error="upstream said no")
    make_log_row(now - dt.timedelta(days=3), **row, model="cheap-model", cost="0.25")
    make_log_row(now - dt.timedelta(days=9), **row, model="gpt-4o", cost="9")  # outside the week
    response = admin_client.get(INDEX)
    periods = response.context["periods"]
    today, week = periods[0]["figures"], periods[1]["figures"]
    assert (today.requests, today.errors, today.cost_usd) == (2, 1, Decimal("1.5"))
    assert (week.requests, week.errors, week.cost_usd) == (3, 1, Decimal("1.75"))
    html = response.content.decode()
    assert "$1.50" in html and "$1.75" in html
    assert "status_class=error" in periods[0]["links"]["errors"]
    top_keys = response.context["top_keys"]
    assert top_keys[0]["name"].startswith("spender") and top_keys[0]["figures"].cost_usd == Decimal(
        "1.75"
    )
    assert [m["name"] for m in response.context["top_models"]] == ["gpt-4o", "cheap-model"]
    assert "upstream said no" in html
    # The errors link lists exactly today's failed request.
    listed = admin_client.get(periods[0]["links"]["errors"]).content.decode()
    assert "upstream said no" in listed and listed.count("/change/") == 1


def test_a_rotated_key_counts_as_one_lineage_among_the_top_keys(
    admin_client, make_key, make_log_row
):
    from keys.services import key_rotate

    old, _ = make_key(name="team-beta")
    make_log_row(key=old, cost="1")
    new, _ = key_rotate(actor="tests", key=old)
    make_log_row(key=new, cost="2")
    rows = admin_client.get(INDEX).context["top_keys"]
    assert len(rows) == 1
    assert rows[0]["figures"].cost_usd == Decimal("3")
    assert rows[0]["url"] == reverse("admin:keys_apikey_change", args=[new.pk])


def test_keys_near_their_budget(admin_client, make_key):
    from limits import windows
    from limits.models import Spend
    from limits.services import limits_set

    near, _ = make_key(name="near")
    far, _ = make_key(name="far")
    for key, spent in ((near, "8.5"), (far, "1")):
        limits = limits_set(key=key, budget_usd=Decimal("10"), budget_period="day")
        start = windows.window_start("day", dt.datetime.now(dt.UTC))
        Spend.objects.create(limits=limits, window_start=start, spent_usd=Decimal(spent))
    rows = admin_client.get(INDEX).context["near_budget"]
    assert [r["key"].pk for r in rows] == [near.pk]
    assert rows[0]["text"] == "$8.50 of $10.00" and round(rows[0]["percent"]) == 85


def test_the_dashboard_query_count_does_not_grow_with_rows(
    admin_client, make_key, make_upstream, make_log_row, django_assert_max_num_queries
):
    ups = [make_upstream() for _ in range(3)]
    keys = [make_key(upstreams=ups, name=f"k{i}")[0] for i in range(6)]
    for i in range(60):
        ok = i % 2 == 0
        make_log_row(key=keys[i % 6], upstream=ups[i % 3], model=f"m{i % 7}",
                     status=200 if ok else 500, cost="0.01" if ok else None)  # fmt: skip
    admin_client.get(INDEX)  # the first view writes the rollup once
    with django_assert_max_num_queries(QUERIES):
        assert admin_client.get(INDEX).status_code == 200


def test_upstreams_show_their_health_and_last_failure(admin_client, make_upstream):
    from django.utils import timezone

    from upstreams.models import UpstreamHealth

    cooling, failing = make_upstream(name="cooling-one"), make_upstream(name="failing-one")
    make_upstream(name="healthy-one")
    now = timezone.now()
    UpstreamHealth.objects.create(
        upstream=cooling,
        consecutive_failures=5,
        cooling_until=now + dt.timedelta(seconds=30),
        last_failure_at=now,
        last_failure_reason="HTTP 503",
    )
    UpstreamHealth.objects.create(
        upstream=failing, consecutive_failures=2, last_failure_at=now, last_failure_reason="timeout"
    )
    html = admin_client.get(INDEX).content.decode()
    panel = html[html.index('id="upstream-health"') : html.index('id="near-budget"')]
    rows = {
        name: panel[panel.index(name) :][:1200]
        for name in ("cooling-one", "failing-one", "healthy-one")
    }
    assert ">cooling</span>" in rows["cooling-one"] and "HTTP 503" in rows["cooling-one"]
    assert ">failing</span>" in rows["failing-one"] and "timeout" in rows["failing-one"]
    assert ">ok</span>" in rows["healthy-one"]
