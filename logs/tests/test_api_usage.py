"""GET /admin/usage: grouped by day, key, upstream, model (one or two), filtered, with totals,
the same numbers from the daily rollup as from the logs, and rotated keys as one lineage."""

from __future__ import annotations

import datetime as dt
import io
import uuid
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.utils import timezone

from gatewaysite.tests.admin_api import assert_error
from keys.services import key_rotate
from logs.models import DailyUsage, RequestLog, UsageRollupDay
from logs.services import log_finish, log_open

pytestmark = pytest.mark.django_db
COUNT_FIELDS = ["requests", "errors", "prompt_tokens", "completion_tokens", "cache_read_tokens",
                "cache_write_tokens", "total_tokens"]  # fmt: skip


def midday(days_ago: int) -> dt.datetime:
    """Noon UTC that many days ago; for today, a moment already past (halfway since midnight)."""
    now = timezone.now().astimezone(dt.UTC)
    day = now.date() - dt.timedelta(days=days_ago)
    if days_ago == 0:
        midnight = dt.datetime.combine(day, dt.time(0), tzinfo=dt.UTC)
        return midnight + (now - midnight) / 2
    return dt.datetime.combine(day, dt.time(12), tzinfo=dt.UTC)


def log(*, key=None, upstream=None, at, model="gpt-4o", status=200, prompt=10, completion=5,
        cache_read=None, cost="0.000100000000"):  # fmt: skip
    log_id = log_open(request_id=uuid.uuid4(), method="POST", path="/v1/chat/completions",
                      api_key_id=key.pk if key else None,
                      upstream_id=upstream.pk if upstream else None, model=model)  # fmt: skip
    log_finish(
        log_id=log_id, status_code=status, duration_ms=5, prompt_tokens=prompt,
        completion_tokens=completion,
        total_tokens=None if prompt is None else prompt + completion,
        cache_read_tokens=cache_read, cost_usd=None if cost is None else Decimal(cost),
    )  # fmt: skip
    RequestLog.objects.filter(pk=log_id).update(created_at=at)


@pytest.fixture
def traffic(make_key, make_upstream):
    a, b = make_upstream(), make_upstream()
    key1, _ = make_key(upstreams=[a, b])
    key2, _ = make_key(upstreams=[a])
    log(key=key1, upstream=a, at=midday(5), cache_read=4)
    log(key=key1, upstream=b, at=midday(5), model="claude", cost="0.002000000000")
    log(key=key2, upstream=a, at=midday(3), status=429, prompt=None, completion=None, cost=None)
    today = midday(0)
    log(key=key2, upstream=a, at=today, cost=None)  # tokens known, no price
    log(key=None, upstream=None, at=today, status=401, prompt=None, completion=None, cost=None)
    log(key=key1, upstream=a, at=midday(40))  # outside the default 30 days
    return {"a": a, "b": b, "key1": key1, "key2": key2, "today": today}


def get(api, **params):
    response = api.get("/admin/usage", params)
    assert response.status_code == 200, response.content
    return response.json()


def test_usage_per_day_with_totals_over_the_last_30_days(api, traffic):
    body = get(api, group_by="day")
    days = {item["day"]: item for item in body["items"]}
    assert sorted(days) == [midday(n).date().isoformat() for n in (5, 3, 0)]
    five = days[midday(5).date().isoformat()]
    assert [five[f] for f in COUNT_FIELDS] == [2, 0, 20, 10, 4, 0, 30]
    assert five["cost_usd"] == "0.002100000000"
    three = days[midday(3).date().isoformat()]
    assert (three["requests"], three["errors"], three["total_tokens"]) == (1, 1, 0)
    assert three["cost_usd"] is None  # nothing priced: unknown, not 0
    today = days[midday(0).date().isoformat()]
    assert (today["requests"], today["errors"], today["prompt_tokens"]) == (2, 1, 10)
    assert today["cost_usd"] is None
    totals = body["totals"]
    assert [totals[f] for f in COUNT_FIELDS] == [5, 2, 30, 15, 4, 0, 45]
    assert totals["cost_usd"] == "0.002100000000"


def test_reading_usage_writes_no_rollup(api, traffic):
    get(api, group_by="day,model")
    get(api, group_by="key", since=midday(45).isoformat())
    assert not UsageRollupDay.objects.exists() and not DailyUsage.objects.exists()


def test_settled_days_come_from_the_rollup_with_the_same_numbers(api, traffic):
    first = get(api, group_by="day,model")
    longer = get(api, group_by="key,model", since=midday(45).isoformat())
    out = io.StringIO()
    call_command("roll_up_usage", stdout=out)
    assert out.getvalue().startswith("Rolled up ")
    assert get(api, group_by="day,model") == first  # read now from the rollup: the same
    assert get(api, group_by="key,model", since=midday(45).isoformat()) == longer
    rolled = set(UsageRollupDay.objects.values_list("day", flat=True))
    assert {midday(5).date(), midday(3).date()} <= rolled
    assert midday(0).date() not in rolled  # today is still read from the logs
    assert DailyUsage.objects.filter(day=midday(5).date(), model="claude").exists()
    RequestLog.objects.filter(created_at__lt=midday(2)).delete()  # pruned: the sums stay
    assert get(api, group_by="day,model") == first
    assert get(api, group_by="key,model", since=midday(45).isoformat()) == longer


@pytest.mark.parametrize(
    ("group_by", "expected"),
    [
        ("upstream", {"a": 3, "b": 1, None: 1}),
        ("key", {"key1": 2, "key2": 2, None: 1}),
        ("model", {"gpt-4o": 4, "claude": 1}),
    ],
)
def test_usage_per_key_upstream_or_model(api, traffic, group_by, expected):
    field = {"upstream": "upstream_id", "key": "api_key_id", "model": "model"}[group_by]
    names = {str(v.pk): k for k, v in traffic.items() if k != "today"}
    got = {
        names.get(i[field], i[field]): i["requests"] for i in get(api, group_by=group_by)["items"]
    }
    assert got == expected


def test_two_dimensions_and_filters(api, traffic):
    items = get(api, group_by="key,upstream", api_key_id=str(traffic["key1"].pk))["items"]
    assert {(i["api_key_id"], i["upstream_id"]) for i in items} == {
        (str(traffic["key1"].pk), str(traffic["a"].pk)),
        (str(traffic["key1"].pk), str(traffic["b"].pk)),
    }
    only = get(api, group_by="model", upstream_id=str(traffic["b"].pk), model="claude")
    assert [(i["model"], i["requests"]) for i in only["items"]] == [("claude", 1)]
    assert only["totals"]["cost_usd"] == "0.002000000000"


def test_since_and_until_cut_at_any_time(api, traffic):
    since = (midday(5) + dt.timedelta(hours=1)).isoformat().replace("+00:00", "Z")
    until = traffic["today"].isoformat().replace("+00:00", "Z")  # today's rows are at until: out
    body = get(api, group_by="day", since=since, until=until)
    assert [i["requests"] for i in body["items"]] == [1]
    old = get(api, group_by="day", since=(midday(41)).isoformat().replace("+00:00", "Z"))
    assert old["totals"]["requests"] == 6


def test_a_rotated_key_is_reported_per_id_and_as_one_lineage(api, traffic):
    old = traffic["key1"]
    new, _ = key_rotate(actor="tests", key=old)
    log(key=new, upstream=traffic["a"], at=midday(0), cost="0.000300000000")
    per_id = {i["api_key_id"]: i["requests"] for i in get(api, group_by="key")["items"]}
    assert (per_id[str(old.pk)], per_id[str(new.pk)]) == (2, 1)
    lineage = get(api, group_by="key", lineage="true")["items"]
    by_lineage = {i["key_lineage_id"]: i for i in lineage}
    assert by_lineage[str(old.pk)]["requests"] == 3
    assert by_lineage[str(old.pk)]["cost_usd"] == "0.002400000000"
    assert str(new.pk) not in by_lineage
    filtered = get(api, group_by="day", api_key_id=str(new.pk), lineage="true")
    assert filtered["totals"]["requests"] == 3
    assert get(api, group_by="day", api_key_id=str(new.pk))["totals"]["requests"] == 1


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"group_by": "week"}, "group_by"),
        ({"group_by": "day,key,model"}, "group_by"),
        ({"group_by": "day,day"}, "group_by"),
        ({"since": "yesterday"}, "since"),
        ({"api_key_id": "nope"}, "api_key_id"),
        ({"lineage": "maybe"}, "lineage"),
    ],
)
def test_bad_queries_are_400_naming_the_parameter(api, params, field):
    error = assert_error(api.get("/admin/usage", params), 400, "validation_error")
    assert field in error["details"]


def test_no_traffic_gives_empty_items_and_zero_totals(api, make_key):
    body = get(api)
    assert body["items"] == []
    assert body["totals"] == {**dict.fromkeys(COUNT_FIELDS, 0), "cost_usd": None}


def test_an_empty_range_is_empty_not_an_error(api, traffic):
    at = traffic["today"].isoformat().replace("+00:00", "Z")
    body = get(api, since=at, until=at)
    assert (body["items"], body["totals"]["requests"]) == ([], 0)
