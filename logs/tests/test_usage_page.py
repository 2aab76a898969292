"""The usage page: a date range, a grouping, requests, tokens and cost, as GET /admin/usage."""

import datetime as dt
import io
import re

import pytest
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from logs.models import DailyUsage, RequestLog, UsageRollupDay
from logs.services import log_finish, logs_prune, usage_roll_up
from logs.usage import usage_summary
from logs.usage_page import bar_chart, compact_number, nice_ceiling

USAGE_URL = reverse("admin:logs_requestlog_usage")
UTC = dt.UTC


@pytest.fixture
def at_noon(monkeypatch):
    """Today at noon UTC, for tests that count settled days: in the first ~75 minutes of a
    UTC day (the settle window) yesterday is not settled yet, and the count is one short."""
    noon = dt.datetime.combine(timezone.now().astimezone(UTC).date(), dt.time(12), tzinfo=UTC)
    monkeypatch.setattr(timezone, "now", lambda: noon)
    return noon


def _today_at(hour=12, days_ago=0):
    today = timezone.now().astimezone(UTC).date() - dt.timedelta(days=days_ago)
    return dt.datetime.combine(today, dt.time(hour), tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0, 1),
        (1, 1),
        (3, 5),
        (7, 10),
        (10, 10),
        (11, 20),
        (180, 200),
        (201, 500),
        (999_999, 1_000_000),
    ],
)
def test_nice_ceiling(value, expected):
    assert nice_ceiling(value) == expected


@pytest.mark.parametrize(
    ("value", "text"), [(0, "0"), (950, "950"), (1_000, "1k"), (1_250, "1.2k"), (3_400_000, "3.4M")]
)
def test_compact_number(value, text):
    assert compact_number(value) == text


def test_bar_heights_are_proportional_and_the_part_stacks_inside():
    chart = bar_chart(
        [("2026-01-01", 50, 10), ("2026-01-02", 100, 0)], unit="requests", part_name="errors"
    )
    first, second = chart["bars"]
    assert second.height == pytest.approx(2 * first.height)
    assert first.part_height == pytest.approx(first.height / 5)
    assert first.y + first.height == pytest.approx(chart["bottom"])
    assert first.tooltip == "2026-01-01: 50 requests (10 errors)"
    assert [g["label"] for g in chart["grid"]] == ["0", "25", "50", "75", "100"]


@pytest.mark.parametrize(
    ("peak", "labels"),
    [
        (2, ["0", "1", "2"]),
        (1, ["0", "1"]),
        (7, ["0", "2", "4", "6", "8", "10"]),
        (40, ["0", "10", "20", "30", "40", "50"]),
        (1500, ["0", "500", "1k", "1.5k", "2k"]),
    ],
)
def test_axis_labels_are_whole_round_numbers(peak, labels):
    chart = bar_chart([("2026-01-01", peak, 0)], unit="requests")
    assert [g["label"] for g in chart["grid"]] == labels


def _by(group_by: str, now=None, **filters) -> dict:
    """usage_summary's items over the default 30 days, by the value they are grouped by."""
    items = usage_summary(group_by=[group_by], now=now, **filters)["items"]
    column = {"day": "day", "key": "api_key_id", "upstream": "upstream_id"}[group_by]
    return {item[column]: item for item in items}


def _day(at: dt.datetime) -> str:
    return f"{at.astimezone(UTC):%Y-%m-%d}"


@pytest.mark.django_db
def test_usage_sums_per_day_key_and_upstream(make_key, make_upstream, make_log_row, at_noon):
    up_a, up_b = make_upstream(name="up-a"), make_upstream(name="up-b")
    key_a, _ = make_key(upstreams=[up_a, up_b])
    key_b, _ = make_key(upstreams=[up_b])
    make_log_row(_today_at(1), key=key_a, upstream=up_a, prompt=10, completion=5, total=15)
    make_log_row(_today_at(2), key=key_a, upstream=up_b, status=502)
    make_log_row(
        _today_at(3, days_ago=1), key=key_b, upstream=up_b, prompt=1, completion=1, total=2
    )
    make_log_row(_today_at(4), status=401)  # refused before a key or upstream was known
    first_day = _today_at(0, days_ago=29)
    make_log_row(first_day, key=key_b, upstream=up_b, total=7)  # the first instant of the window
    make_log_row(first_day - dt.timedelta(microseconds=1), key=key_b, upstream=up_b, total=1000)

    daily = _by("day")
    today = _day(_today_at())
    assert (daily[today]["requests"], daily[today]["errors"], daily[today]["total_tokens"]) == (
        3,
        2,
        15,
    )
    assert daily[_day(_today_at(days_ago=1))]["total_tokens"] == 2
    assert daily[_day(first_day)]["total_tokens"] == 7  # the row before the window is left out
    assert len(daily) == 3
    per_key_a = _by("day", api_key_id=key_a.pk)
    assert (per_key_a[today]["requests"], per_key_a[today]["prompt_tokens"]) == (2, 10)
    assert _by("upstream")[str(up_b.pk)]["requests"] == 3
    by_key = _by("key")
    assert by_key[None]["requests"] == 1
    assert by_key[str(key_b.pk)]["total_tokens"] == 9


@pytest.mark.django_db
def test_unknown_usage_adds_no_tokens(make_key, make_log_row, at_noon):
    key, _ = make_key()
    make_log_row(_today_at(1), key=key, total=None)
    make_log_row(_today_at(1), key=key, total=40)
    today = _by("day")[_day(_today_at())]
    assert (today["requests"], today["total_tokens"]) == (2, 40)


@pytest.mark.django_db
def test_settled_days_are_summed_once_and_outlive_pruning(make_key, make_log_row, at_noon):
    key, _ = make_key()
    at = _today_at(days_ago=5)
    make_log_row(at, key=key, prompt=20, completion=10, total=30)
    assert _by("day")[_day(at)]["total_tokens"] == 30  # from the logs
    assert usage_roll_up() == 29  # every day of the window but today
    assert UsageRollupDay.objects.filter(day=at.date()).exists()
    assert DailyUsage.objects.get(day=at.date()).total_tokens == 30
    assert usage_roll_up() == 0  # summed once, not on every view
    logs_prune(cutoff=_today_at(0, days_ago=1))
    assert not RequestLog.objects.exists()
    assert _by("day")[_day(at)]["total_tokens"] == 30


@pytest.mark.django_db
def test_a_day_still_changing_is_read_from_the_logs(make_key, make_log_row):
    key, _ = make_key()
    just_after_midnight = _today_at(0) + dt.timedelta(minutes=30)
    yesterday = just_after_midnight.date() - dt.timedelta(days=1)
    row = make_log_row(_today_at(23, days_ago=1) + dt.timedelta(minutes=59), key=key)
    assert _by("day", now=just_after_midnight)[f"{yesterday}"]["total_tokens"] == 0
    # A request begun before midnight ends after it: its usage still counts for its day.
    log_finish(log_id=row.pk, status_code=200, duration_ms=5, total_tokens=77)
    usage_roll_up(now=just_after_midnight)
    assert not UsageRollupDay.objects.filter(day=yesterday).exists()
    assert _by("day", now=just_after_midnight)[f"{yesterday}"]["total_tokens"] == 77
    late_evening = _today_at(23)
    usage_roll_up(now=late_evening)
    assert UsageRollupDay.objects.filter(day=yesterday).exists()
    assert _by("day", now=late_evening)[f"{yesterday}"]["total_tokens"] == 77


@pytest.mark.django_db
def test_viewing_the_page_writes_no_rollup(admin_client, make_key, make_log_row, at_noon):
    key, _ = make_key()
    make_log_row(_today_at(days_ago=2), key=key, total=5)
    for query in ("", "?range=last_month&group_by=model", f"?key={key.pk}"):
        assert admin_client.get(USAGE_URL + query).status_code == 200
    assert not UsageRollupDay.objects.exists() and not DailyUsage.objects.exists()


def _page(client, url: str) -> str:
    """The page's text without its CSRF token, which differs on every answer."""
    return re.sub(r'name="csrfmiddlewaretoken" value="[^"]*"', "", client.get(url).content.decode())


def test_roll_up_usage_fills_the_rollup_once_and_the_page_shows_the_same(
    admin_client, make_key, make_log_row, at_noon
):
    key, _ = make_key()
    make_log_row(_today_at(days_ago=2), key=key, total=5)
    make_log_row(_today_at(days_ago=40), key=key, total=7)
    before = [_page(admin_client, USAGE_URL + q) for q in ("", "?range=last_month")]
    out = io.StringIO()
    call_command("roll_up_usage", stdout=out)
    assert out.getvalue() == "Rolled up 365 settled day(s) of usage from the last 366 days.\n"
    assert DailyUsage.objects.filter(day=_today_at(days_ago=2).date()).get().total_tokens == 5
    after = [_page(admin_client, USAGE_URL + q) for q in ("", "?range=last_month")]
    assert after == before
    call_command("roll_up_usage", "--days", "30", stdout=out)
    assert out.getvalue().endswith("Rolled up 0 settled day(s) of usage from the last 30 days.\n")


@pytest.mark.django_db
def test_the_page_draws_three_svg_charts_with_axis_titles_and_a_table(
    admin_client, make_key, make_upstream, make_log_row
):
    upstream = make_upstream(name="openai-main")
    key, plaintext = make_key(upstreams=[upstream], name="reporting")
    for status in (200, 200, 500):
        make_log_row(_today_at(), key=key, upstream=upstream, prompt=100, completion=20, total=120)
        make_log_row(_today_at(days_ago=3), key=key, upstream=upstream, status=status)
    response = admin_client.get(USAGE_URL)
    assert response.status_code == 200
    html = response.content.decode()
    assert html.count('<svg class="usage-chart"') == 3
    assert len(re.findall(r'<rect class="bar" ', html)) == 90  # 30 days x 3 charts
    assert html.count(">day (UTC)</text>") == 3
    assert ">requests</text>" in html and ">USD</text>" in html
    assert "(1 errors)" in html
    daily = html[html.index('id="usage-daily"') :]
    assert f'<td>{_today_at().date():%Y-%m-%d}</td><td class="num">3</td>' in daily
    assert '<td class="num">360</td>' in daily  # total tokens today
    assert "openai-main" not in html  # grouped by key by default
    assert "reporting" in html
    assert plaintext not in html
    # No CDN, no outside resource of any kind.
    assert not re.search(r'(src|href)="(https?:)?//', html)


@pytest.mark.django_db
def test_groupings_and_scopes(admin_client, make_key, make_upstream, make_log_row):
    up_a, up_b = make_upstream(name="up-a"), make_upstream(name="up-b")
    key_a, _ = make_key(upstreams=[up_a], name="key-a")
    key_b, _ = make_key(upstreams=[up_b], name="key-b")
    make_log_row(_today_at(), key=key_a, upstream=up_a, total=11)
    make_log_row(_today_at(), key=key_b, upstream=up_b, total=22)
    make_log_row(_today_at(), key=key_b, upstream=up_b, total=22)

    def footer(params):
        html = admin_client.get(USAGE_URL, params).content.decode()
        daily = html[html.index('id="usage-daily"') :]
        return html, daily[daily.index("<tfoot>") : daily.index("</tfoot>")]

    html, total = footer({})
    assert "all traffic" in html and '<th class="num">3</th>' in total
    assert f"key={key_a.pk}" in html
    html, _ = footer({"group_by": "upstream"})
    assert f"upstream={up_b.pk}" in html and "up-a" in html
    html, total = footer({"key": str(key_a.pk)})
    assert "key key-a" in html and '<th class="num">11</th>' in total
    html, total = footer({"upstream": str(up_b.pk)})
    assert "upstream up-b" in html and '<th class="num">44</th>' in total
    html, _ = footer({"key": "nonsense"})
    assert "not valid" in html and "all traffic" in html


@pytest.mark.django_db
def test_the_page_shows_the_same_figures_as_the_admin_api(
    admin_client, make_key, make_upstream, admin_token, make_log_row
):
    from decimal import Decimal

    key, _ = make_key(name="priced")
    for days_ago, cost in ((0, "0.5"), (2, "0.25"), (40, "9")):
        row = make_log_row(_today_at(days_ago=days_ago), key=key, total=10)
        RequestLog.objects.filter(pk=row.pk).update(cost_usd=Decimal(cost))
    response = admin_client.get(USAGE_URL, {"range": "7d", "group_by": "model"})
    context = response.context
    assert context["total"]["requests"] == 2 and context["total"]["cost"] == Decimal("0.75")
    assert "$0.75" in response.content.decode()
    api = admin_client.get(context["api_query"], HTTP_AUTHORIZATION=f"Bearer {admin_token}").json()
    assert api["totals"]["requests"] == 2
    assert Decimal(api["totals"]["cost_usd"]) == Decimal("0.75")


@pytest.mark.parametrize(
    ("params", "preset", "first", "last", "note"),
    [
        ({}, "30d", dt.date(2026, 11, 2), dt.date(2026, 12, 1), ""),
        ({"range": "today"}, "today", dt.date(2026, 12, 1), dt.date(2026, 12, 1), ""),
        ({"range": "7d"}, "7d", dt.date(2026, 11, 25), dt.date(2026, 12, 1), ""),
        ({"range": "month"}, "month", dt.date(2026, 12, 1), dt.date(2026, 12, 1), ""),
        ({"range": "last_month"}, "last_month", dt.date(2026, 11, 1), dt.date(2026, 11, 30), ""),
        (
            {"range": "custom", "since": "2026-10-03", "until": "2026-10-05"},
            "custom",
            dt.date(2026, 10, 3),
            dt.date(2026, 10, 5),
            "",
        ),
        (
            {"range": "custom", "since": "10/03/2026"},
            "30d",
            dt.date(2026, 11, 2),
            dt.date(2026, 12, 1),
            "YYYY-MM-DD",
        ),
        (
            {"range": "custom", "since": "2026-10-05", "until": "2026-10-03"},
            "30d",
            dt.date(2026, 11, 2),
            dt.date(2026, 12, 1),
            "ends before it starts",
        ),
        ({"range": "century"}, "30d", dt.date(2026, 11, 2), dt.date(2026, 12, 1), "Unknown range"),
    ],
)
def test_date_ranges(params, preset, first, last, note):
    from logs.usage_view import usage_range

    span = usage_range(params, today=dt.date(2026, 12, 1))
    assert (span.preset, span.first, span.last) == (preset, first, last)
    assert note in span.note and bool(note) == bool(span.note)


def test_money_charts_get_round_dollar_axes():
    chart = bar_chart([("2026-01-01", 0.03, 0)], unit="USD", money=True)
    assert [g["label"] for g in chart["grid"]] == [
        "$0",
        "$0.01",
        "$0.02",
        "$0.03",
        "$0.04",
        "$0.05",
    ]
    assert chart["bars"][0].tooltip == "2026-01-01: $0.0300"
    chart = bar_chart([("2026-01-01", 130, 0)], unit="USD", money=True)
    assert [g["label"] for g in chart["grid"]] == ["$0", "$50", "$100", "$150", "$200"]


@pytest.mark.django_db
def test_the_usage_page_is_linked_from_the_admin_index_and_the_log_list(admin_client):
    assert USAGE_URL in admin_client.get(reverse("admin:index")).content.decode()
    logs_list = admin_client.get(reverse("admin:logs_requestlog_changelist"))
    assert USAGE_URL in logs_list.content.decode()


@pytest.mark.django_db
def test_the_usage_page_needs_a_staff_login(client):
    response = client.get(USAGE_URL)
    assert response.status_code == 302 and "/django-admin/login/" in response["Location"]
