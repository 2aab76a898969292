"""The admin site's dashboard: the gateway's name, its figures and their links, cheap queries."""

import datetime as dt
from decimal import Decimal

import pytest
from django.urls import reverse

from logs.models import RequestLog

pytestmark = pytest.mark.django_db

INDEX = reverse("admin:index")
# Measured 24 (sessions, rollup checks, four usage sums, the panels); a panel per row would be hundreds.
QUERIES = 26


def _log(*, key=None, upstream=None, status=200, cost="0.01", model="gpt-4o", ago=None, **extra):
    at = dt.datetime.now(dt.UTC) - (ago or dt.timedelta(minutes=1))
    return RequestLog.objects.create(
        method="POST",
        path="/v1/chat/completions",
        api_key=key,
        upstream=upstream,
        model=model,
        status_code=status,
        total_tokens=100 if status == 200 else None,
        cost_usd=Decimal(cost) if status == 200 else None,
        duration_ms=500,
        created_at=at,
        state=RequestLog.State.FINISHED,
        **extra,
    )


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


def test_figures_today_and_over_seven_days_with_their_links(admin_client, make_key, make_upstream):
    upstream = make_upstream(name="up-main")
    key, _ = make_key(upstreams=[upstream], name="spender")
    _log(key=key, upstream=upstream, cost="1.50")
    _log(key=key, upstream=upstream, status=502, error="upstream said no")
    _log(key=key, upstream=upstream, cost="0.25", ago=dt.timedelta(days=3), model="cheap-model")
    _log(key=key, upstream=upstream, cost="9", ago=dt.timedelta(days=9))  # outside the week
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


def test_a_rotated_key_counts_as_one_lineage_among_the_top_keys(admin_client, make_key):
    from keys.services import key_rotate

    old, _ = make_key(name="team-beta")
    _log(key=old, cost="1")
    new, _ = key_rotate(actor="tests", key=old)
    _log(key=new, cost="2")
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
    admin_client, make_key, make_upstream, django_assert_max_num_queries
):
    ups = [make_upstream() for _ in range(3)]
    keys = [make_key(upstreams=ups, name=f"k{i}")[0] for i in range(6)]
    for i in range(60):
        _log(key=keys[i % 6], upstream=ups[i % 3], model=f"m{i % 7}", status=(200, 500)[i % 2])
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
