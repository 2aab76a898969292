"""The request log pages of the admin site: read-only, newest first, filters, cheap counts."""

import datetime as dt
import re
import uuid

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from logs import admin as logs_admin
from logs import admin_list

pytestmark = pytest.mark.django_db

LIST_URL = reverse("admin:logs_requestlog_changelist")
UTC = dt.UTC


def _listed_ids(html: str) -> list[str]:
    return re.findall(r"/django-admin/logs/requestlog/(\d+)/change/", html)


def test_logs_are_read_only(admin_client, make_log_row):
    row = make_log_row()
    assert admin_client.get(reverse("admin:logs_requestlog_add")).status_code == 403
    change_url = reverse("admin:logs_requestlog_change", args=[row.pk])
    page = admin_client.get(change_url)
    assert page.status_code == 200 and str(row.request_id) in page.content.decode()
    assert admin_client.post(change_url, {"status_code": "500"}).status_code == 403
    delete_url = reverse("admin:logs_requestlog_delete", args=[row.pk])
    assert admin_client.post(delete_url, {"post": "yes"}).status_code == 403
    html = admin_client.get(LIST_URL).content.decode()
    assert "delete_selected" not in html and "Add request log" not in html
    row.refresh_from_db()
    assert row.status_code == 200


def test_newest_first(admin_client, make_log_row):
    now = dt.datetime.now(UTC)
    old, middle, new = (make_log_row(now - dt.timedelta(minutes=m)) for m in (30, 20, 10))
    html = admin_client.get(LIST_URL).content.decode()
    assert _listed_ids(html) == [str(new.pk), str(middle.pk), str(old.pk)]


@pytest.mark.parametrize(
    ("status_class", "expected"),
    [("2xx", {200, 201}), ("4xx", {401, 429}), ("5xx", {502}), ("0", {0})],
)
def test_status_class_filter(admin_client, status_class, expected, make_log_row):
    rows = {code: make_log_row(status=code) for code in (0, 200, 201, 401, 429, 502)}
    html = admin_client.get(LIST_URL, {"status_class": status_class}).content.decode()
    assert set(_listed_ids(html)) == {str(rows[c].pk) for c in expected}


def test_key_upstream_and_model_filters(admin_client, make_key, make_upstream, make_log_row):
    up_a, up_b = make_upstream(name="up-a"), make_upstream(name="up-b")
    key_a, _ = make_key(upstreams=[up_a], name="key-a")
    key_b, _ = make_key(upstreams=[up_b], name="key-b")
    a = make_log_row(key=key_a, upstream=up_a, model="gpt-4o")
    b = make_log_row(key=key_b, upstream=up_b, model="claude-sonnet")
    html = admin_client.get(LIST_URL).content.decode()
    assert "gpt-4o" in html and "claude-sonnet" in html  # offered in the model filter
    for params, row in (
        ({"api_key__id__exact": str(key_a.pk)}, a),
        ({"upstream__id__exact": str(up_b.pk)}, b),
        ({"model": "claude-sonnet"}, b),
    ):
        assert _listed_ids(admin_client.get(LIST_URL, params).content.decode()) == [str(row.pk)]


def test_date_filter_and_hierarchy(admin_client, make_log_row):
    now = dt.datetime.now(UTC)
    recent = make_log_row(now - dt.timedelta(hours=1))
    last_year = make_log_row(now.replace(year=now.year - 1))
    html = admin_client.get(LIST_URL).content.decode()
    # Two years of logs: the hierarchy starts with years.
    assert f"?created_at__year={now.year - 1}" in html and f"?created_at__year={now.year}" in html
    html = admin_client.get(LIST_URL, {"created_at__year": now.year - 1}).content.decode()
    assert _listed_ids(html) == [str(last_year.pk)]
    assert f"created_at__month={now.month}" in html
    params = {"created_at__year": now.year, "created_at__month": recent.created_at.month}
    html = admin_client.get(LIST_URL, params).content.decode()
    assert f"created_at__day={recent.created_at.day}" in html
    since = (now - dt.timedelta(days=7)).date().isoformat()
    html = admin_client.get(LIST_URL, {"created_at__gte": since}).content.decode()
    assert _listed_ids(html) == [str(recent.pk)]


def test_search_by_request_id(admin_client, make_log_row):
    wanted = make_log_row()
    make_log_row()
    html = admin_client.get(LIST_URL, {"q": str(wanted.request_id)}).content.decode()
    assert _listed_ids(html) == [str(wanted.pk)]
    html = admin_client.get(LIST_URL, {"q": wanted.request_id.hex.upper()}).content.decode()
    assert _listed_ids(html) == [str(wanted.pk)]
    response = admin_client.get(LIST_URL, {"q": "not-a-request-id"})
    assert response.status_code == 200 and _listed_ids(response.content.decode()) == []
    assert _listed_ids(admin_client.get(LIST_URL, {"q": str(uuid.uuid4())}).content.decode()) == []


def test_no_page_counts_the_whole_table(admin_client, make_log_row):
    for _ in range(3):
        make_log_row()
    with CaptureQueriesContext(connection) as queries:
        assert admin_client.get(LIST_URL).status_code == 200
        assert admin_client.get(LIST_URL, {"status_class": "2xx", "p": "1"}).status_code == 200
    counts = [q["sql"] for q in queries.captured_queries if "COUNT(" in q["sql"].upper()]
    assert counts, "the paginator counts (a capped count)"
    assert all("LIMIT" in sql.upper() for sql in counts), counts


def test_a_capped_count_says_more_match(admin_client, monkeypatch, make_log_row):
    monkeypatch.setattr(admin_list.CappedCountPaginator, "cap", 5)
    monkeypatch.setattr(logs_admin.RequestLogAdmin, "list_per_page", 2)
    now = dt.datetime.now(UTC)
    rows = [make_log_row(now - dt.timedelta(seconds=i)) for i in range(8)]
    html = admin_client.get(LIST_URL).content.decode()
    assert "More than 5 request logs match" in html
    assert "more than 5 results" in html
    assert _listed_ids(admin_client.get(LIST_URL, {"p": "3"}).content.decode()) == [str(rows[4].pk)]


def test_the_list_query_count_does_not_grow_with_rows(
    admin_client, make_key, make_upstream, django_assert_max_num_queries, make_log_row
):
    ups = [make_upstream() for _ in range(3)]
    keys = [make_key(upstreams=ups, name=f"k{i}")[0] for i in range(4)]
    for i in range(40):
        make_log_row(key=keys[i % 4], upstream=ups[i % 3], model=f"m{i % 5}")
    with django_assert_max_num_queries(16):
        assert admin_client.get(LIST_URL).status_code == 200
