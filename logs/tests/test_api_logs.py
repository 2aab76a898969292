"""The admin API for request logs: read-only pages, filters, one row by request id."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from django.utils import timezone

from gatewaysite.tests.admin_api import admin_client, assert_error, assert_page
from logs.models import RequestLog
from logs.services import log_finish, log_open

pytestmark = pytest.mark.django_db

LOG_FIELDS = {
    "id", "api_key_id", "api_key_prefix", "upstream_id", "upstream_name", "method", "path",
    "model", "upstream_model", "attempts", "is_stream", "status_code", "prompt_tokens",
    "completion_tokens", "total_tokens",
    "cache_read_tokens", "cache_write_tokens", "cost_usd", "duration_ms", "ttfb_ms", "error", "state",
    "created_at", "finished_at",
}  # fmt: skip
T0 = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)


@pytest.fixture
def api(admin_token):
    return admin_client(admin_token)


@pytest.fixture
def make_log():
    def make(*, key=None, upstream=None, at=T0, status=200, model="gpt-x", finish=True, **usage):
        request_id = uuid.uuid4()
        log_id = log_open(
            request_id=request_id, method="POST", path="/v1/chat/completions",
            api_key_id=key.pk if key else None, upstream_id=upstream.pk if upstream else None,
            model=model,
        )  # fmt: skip
        if finish:
            log_finish(log_id=log_id, status_code=status, duration_ms=12, ttfb_ms=5, **usage)
        RequestLog.objects.filter(pk=log_id).update(created_at=at)
        return str(request_id)

    return make


def test_a_log_row_as_the_api_shows_it(api, make_key, make_log):
    key, raw = make_key()
    upstream = key.upstreams.get()
    rid = make_log(key=key, upstream=upstream, prompt_tokens=11, completion_tokens=3,
                   total_tokens=14)  # fmt: skip
    body = api.get(f"/admin/logs/{rid}").json()
    assert set(body) == LOG_FIELDS
    assert body["id"] == rid
    assert (body["api_key_id"], body["api_key_prefix"]) == (str(key.pk), key.key_prefix)
    assert (body["upstream_id"], body["upstream_name"]) == (str(upstream.pk), upstream.name)
    assert (body["status_code"], body["total_tokens"], body["state"]) == (200, 14, "finished")
    assert body["cache_read_tokens"] is None  # unknown stays unknown
    assert body["created_at"] == "2026-03-01T12:00:00Z"
    text = api.get("/admin/logs").content.decode()
    assert raw not in text and key.key_hash not in text


def test_an_unfinished_row_and_a_row_without_key(api, make_log):
    rid = make_log(finish=False)
    body = api.get(f"/admin/logs/{rid}").json()
    assert (body["state"], body["status_code"], body["api_key_id"], body["api_key_prefix"]) == (
        "in_flight",
        0,
        None,
        None,
    )


def test_newest_first_with_a_stable_order_for_equal_times(api, make_log):
    same = [make_log(at=T0) for _ in range(3)]
    newer = make_log(at=T0 + dt.timedelta(seconds=1))
    older = make_log(at=T0 - dt.timedelta(seconds=1))
    items = assert_page(api.get("/admin/logs"), total=5)
    ids = [i["id"] for i in items]
    assert ids[0] == newer and ids[-1] == older and set(ids[1:4]) == set(same)
    by_pk = list(RequestLog.objects.filter(request_id__in=same).order_by("-pk")
                 .values_list("request_id", flat=True))  # fmt: skip
    assert ids[1:4] == [str(r) for r in by_pk]
    pages = [api.get(f"/admin/logs?page={p}&page_size=2").json()["items"] for p in (1, 2, 3)]
    assert [i["id"] for page in pages for i in page] == ids


def test_filters(api, make_key, make_upstream, make_log):
    up1, up2 = make_upstream(), make_upstream()
    k1, _ = make_key(upstreams=[up1])
    k2, _ = make_key(upstreams=[up2])
    a = make_log(key=k1, upstream=up1, at=T0, status=200, model="gpt-x")
    b = make_log(key=k1, upstream=up1, at=T0 + dt.timedelta(hours=1), status=429, model="gpt-y")
    c = make_log(key=k2, upstream=up2, at=T0 + dt.timedelta(hours=2), status=0, model="claude")

    def ids(query):
        return {i["id"] for i in api.get(f"/admin/logs?{query}").json()["items"]}

    assert ids(f"api_key_id={k1.pk}") == {a, b}
    assert ids(f"upstream_id={up2.pk}") == {c}
    assert ids("status_code=429") == {b}
    assert ids("status_code=0") == {c}
    assert ids("model=gpt-x") == {a}
    assert ids("model=GPT-X") == set()
    assert ids("since=2026-03-01T13:00:00Z") == {b, c}
    assert ids("until=2026-03-01T13:00:00Z") == {a}
    assert ids("since=2026-03-01T13:00:00%2B01:00") == {a, b, c}
    assert ids("since=2026-03-01T13:00:00 01:00") == {a, b, c}  # an unescaped "+"
    assert ids("since=0001-01-01T00:00:00Z&until=9999-12-31T23:59:59Z") == {a, b, c}
    assert ids(f"api_key_id={k1.pk}&status_code=200&until=2026-03-02T00:00:00Z") == {a}
    assert ids(f"api_key_id={uuid.uuid4()}") == set()


@pytest.mark.parametrize(
    "query",
    [
        "api_key_id=abc", "api_key_id=", "upstream_id=12", "status_code=abc", "status_code=1.5",
        "status_code=-1", "status_code=1000", "status_code=", "model=a%00b",
        "since=2026-03-01", "since=2026-03-01T00:00:00", "since=yesterday", "until=2026-13-01T00:00:00Z",
        "until=", "ordering=path", "ordering=-id", "page=0", "page_size=-5",
    ],
)  # fmt: skip
def test_bad_filters_are_400(api, make_log, query):
    make_log()
    body = assert_error(api.get(f"/admin/logs?{query}"), 400, "validation_error")
    assert query.split("=")[0] in body["details"]


def test_ordering_by_an_allowed_field(api, make_log):
    slow = make_log(status=500, at=T0)
    fast = make_log(status=200, at=T0 + dt.timedelta(seconds=1))
    RequestLog.objects.filter(request_id=slow).update(duration_ms=900)
    assert [i["id"] for i in api.get("/admin/logs?ordering=-duration_ms").json()["items"]] == [
        slow, fast
    ]  # fmt: skip
    assert [i["id"] for i in api.get("/admin/logs?ordering=status_code").json()["items"]] == [
        fast, slow
    ]  # fmt: skip


def test_list_costs_two_queries(api, make_key, make_log, django_assert_num_queries):
    key, _ = make_key()
    for _ in range(15):
        make_log(key=key, upstream=key.upstreams.get())
    with django_assert_num_queries(2):  # count, page (key prefix and upstream name joined)
        assert len(assert_page(api.get("/admin/logs"), total=15)) == 15


def test_logs_are_read_only(api, make_log):
    rid = make_log()
    for method, url in [
        ("post", "/admin/logs"),
        ("put", f"/admin/logs/{rid}"),
        ("patch", f"/admin/logs/{rid}"),
        ("delete", f"/admin/logs/{rid}"),
    ]:
        response = getattr(api, method)(url, {}, format="json")
        assert_error(response, 405, "method_not_allowed")
        assert "GET" in response["Allow"] and method.upper() not in response["Allow"]
    assert RequestLog.objects.count() == 1


def test_unknown_and_malformed_ids_are_404(api, make_log):
    make_log()
    pk = RequestLog.objects.get().pk
    for ident in (uuid.uuid4(), pk, "abc"):
        assert_error(api.get(f"/admin/logs/{ident}"), 404, "not_found")


def test_a_busy_log_shows_created_at_in_utc(api, make_log):
    rid = make_log(at=timezone.now())
    assert api.get(f"/admin/logs/{rid}").json()["created_at"].endswith("Z")
