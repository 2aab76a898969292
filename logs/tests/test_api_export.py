"""GET /admin/logs/export?format=csv|jsonl: every row the list's filters select, oldest first,
the same columns as the JSON rows, streamed in constant memory; and the admin's Export CSV."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import tracemalloc
import uuid
from decimal import Decimal

import pytest

from gatewaysite.tests.admin_api import assert_error
from logs import export
from logs.models import RequestLog
from logs.services import log_finish, log_open

pytestmark = pytest.mark.django_db
T0 = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)


@pytest.fixture
def rows(make_key):
    key, _ = make_key()
    upstream = key.upstreams.get()
    made = []
    for i, (status, cost) in enumerate([(200, "0.000012500000"), (500, None), (200, None),
                                        (429, None), (200, "1.000000000001")]):  # fmt: skip
        log_id = log_open(request_id=uuid.uuid4(), method="POST", path="/v1/chat/completions",
                          api_key_id=key.pk, upstream_id=upstream.pk, model=f"m,{i} \"q\"",
                          is_stream=bool(i % 2))  # fmt: skip
        log_finish(log_id=log_id, status_code=status, duration_ms=10 + i,
                   prompt_tokens=None if cost is None else 3, completion_tokens=4,
                   error="" if status == 200 else f"upstream said, \"no\"\\n{i}",
                   cost_usd=None if cost is None else Decimal(cost))  # fmt: skip
        # Listed newest first by the API; the export must come out oldest first.
        RequestLog.objects.filter(pk=log_id).update(created_at=T0 + dt.timedelta(minutes=i))
        made.append(log_id)
    return {"key": key, "upstream": upstream}


def listed(api, query="") -> list[dict]:
    body = api.get(f"/admin/logs?page_size=200{query}").json()
    return list(reversed(body["items"]))  # oldest first


def stream_text(response) -> str:
    assert response.status_code == 200, response.content
    return b"".join(response.streaming_content).decode("utf-8")


def test_jsonl_rows_are_the_json_rows_oldest_first(api, rows):
    response = api.get("/admin/logs/export?format=jsonl")
    assert response["Content-Type"] == "application/x-ndjson"
    lines = stream_text(response).splitlines()
    assert [json.loads(line) for line in lines] == listed(api)
    assert json.loads(lines[-1])["cost_usd"] == "1.000000000001"


def test_csv_has_one_header_line_and_the_same_values(api, rows):
    response = api.get("/admin/logs/export?format=csv")
    assert response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    table = list(csv.reader(io.StringIO(stream_text(response))))
    expected = listed(api)
    assert table[0] == list(expected[0])
    assert len(table) == 1 + len(expected)

    def cell(value):
        if value is None:
            return ""
        return (
            {True: "true", False: "false"}.get(value, str(value))
            if isinstance(value, bool)
            else str(value)
        )

    for line, item in zip(table[1:], expected, strict=True):
        assert line == [cell(v) for v in item.values()]


def test_the_lists_filters_select_the_rows(api, rows):
    got = stream_text(api.get("/admin/logs/export?format=jsonl&status_code=200"))
    assert [json.loads(x)["status_code"] for x in got.splitlines()] == [200, 200, 200]
    since = (T0 + dt.timedelta(minutes=3)).isoformat().replace("+00:00", "Z")
    got = stream_text(api.get(f"/admin/logs/export?format=csv&since={since}"))
    assert len(got.splitlines()) == 1 + 2
    other = uuid.uuid4()
    got = stream_text(api.get(f"/admin/logs/export?format=jsonl&api_key_id={other}"))
    assert got == ""


@pytest.mark.parametrize("query", ["", "format=xml", "format=json", "format=csv&status_code=x"])
def test_a_bad_export_query_is_a_json_400(api, rows, query):
    assert_error(api.get(f"/admin/logs/export?{query}"), 400, "validation_error")


def test_the_admin_list_exports_its_current_filters_as_csv(admin_client, rows):
    from django.urls import reverse

    changelist = admin_client.get(reverse("admin:logs_requestlog_changelist") + "?status_class=5xx")
    export_url = reverse("admin:logs_requestlog_export") + "?status_class=5xx"
    assert f'href="{export_url}"' in changelist.content.decode()
    table = list(csv.reader(io.StringIO(stream_text(admin_client.get(export_url)))))
    assert [line[table[0].index("status_code")] for line in table[1:]] == ["500"]


@pytest.mark.parametrize("query", ["created_at__year=abc", "api_key__id__exact=nope"])
def test_the_admin_export_with_a_filter_it_cannot_apply_goes_back_to_the_list(
    admin_client, rows, query
):
    from django.urls import reverse

    changelist = reverse("admin:logs_requestlog_changelist")
    listed = admin_client.get(f"{changelist}?{query}")
    assert (listed.status_code, listed["Location"]) == (302, f"{changelist}?e=1")
    exported = admin_client.get(f"{reverse('admin:logs_requestlog_export')}?{query}")
    assert (exported.status_code, exported["Location"]) == (302, f"{changelist}?e=1")
    page = admin_client.get(exported["Location"]).content.decode()
    assert "Nothing exported: a filter in the address is not valid." in page


def _insert_many(count: int, key_id, upstream_id) -> None:
    batch = 20_000
    for start in range(0, count, batch):
        RequestLog.objects.bulk_create(
            RequestLog(
                request_id=uuid.uuid4(), api_key_id=key_id, upstream_id=upstream_id,
                method="POST", path="/v1/chat/completions", model="gpt-4o-mini",
                status_code=200, prompt_tokens=100, completion_tokens=20, total_tokens=120,
                cost_usd=Decimal("0.000123456789"), duration_ms=100, ttfb_ms=10,
                state=RequestLog.State.FINISHED,
                created_at=T0 + dt.timedelta(milliseconds=start + i),
                finished_at=T0 + dt.timedelta(milliseconds=start + i + 100),
            )
            for i in range(min(batch, count - start))
        )  # fmt: skip


def test_an_export_streams_in_constant_memory_one_batch_at_a_time(api, make_key, monkeypatch):
    """50 batches of rows, as 100,000 rows make at the real batch size, only smaller:
    at most a batch or two is ever held. Measured: 10,000 rows in batches of 200 peak at
    0.9 MB, 20,000 rows at the same 0.9 MB, and the same 10,000 rows read in one batch
    at 29 MB (tracemalloc slows Python several times, and 100,000 rows took 50 s)."""
    monkeypatch.setattr(export, "BATCH_ROWS", 200)
    key, _ = make_key()
    rows = 10_000
    _insert_many(rows, key.pk, key.upstreams.get().pk)
    response = api.get("/admin/logs/export?format=csv")
    assert response.status_code == 200
    tracemalloc.start()
    try:
        size = lines = chunks = 0
        for chunk in response.streaming_content:
            size += len(chunk)
            lines += chunk.count(b"\n")
            chunks += 1
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert lines == rows + 1
    assert chunks >= 50
    # About 2.9 MB went out; what one batch of everything would hold is ten times that.
    assert size > 2_500_000
    assert peak < 3_000_000, f"peak {peak / 1e6:.1f} MB"
