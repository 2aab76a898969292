"""The database work of one proxied JSON request, statement by statement, in-process.

What the proxy's recipe promises (proxy/views.py): the version read, the in-flight row,
and the finished row, which reads the price version in the same statement, and nothing
more for a key without limits; with every limit and budget set, the admission rides with
the row's insert and the settlement with its last write, so on PostgreSQL such a key
costs no extra round trip. Only when the prices changed since the worker last loaded
them does the request read them again and correct its row (and its spend).
"""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from limits.selectors import limits_view_for_keys
from limits.services import limits_set
from logs.models import RequestLog
from prices.services import price_create, price_update

pytestmark = pytest.mark.django_db(transaction=True)

BODY = json.dumps({"model": "gpt-test", "messages": [{"role": "user", "content": "hi"}]})


@pytest.fixture
def key_to(provider, make_upstream, make_key):
    upstream = make_upstream(base_url=provider.base_url)

    def make():
        return make_key(upstreams=[upstream])

    return make


def _statements(client, raw_key, while_answering=None) -> list[str]:
    """The statements of one request; `while_answering` runs after its admission, before
    its answer is read (and its row finished)."""
    with CaptureQueriesContext(connection) as captured:
        response = client.post(
            "/v1/chat/completions",
            BODY,
            content_type="application/json",
            HTTP_AUTHORIZATION=f"Bearer {raw_key}",
        )
        if while_answering is not None:
            while_answering()
        b"".join(response.streaming_content)
        response.close()
    assert response.status_code == 200
    # Upstream health is read once a second per process, not per request (upstreams.health).
    return [
        q["sql"] for q in captured.captured_queries if '"upstreams_upstreamhealth"' not in q["sql"]
    ]


def _warm(client, raw_key) -> None:
    _statements(client, raw_key)  # fills the per-process caches (key, upstreams, prices)


def test_a_key_without_limits_costs_three_statements(client, key_to):
    price_create(actor="tests", model="gpt-test", input=Decimal("1"), output=Decimal("2"))
    _, raw = key_to()
    _warm(client, raw)
    statements = _statements(client, raw)
    assert len(statements) == 3, statements
    assert "keys_keyringversion" in statements[0]  # every version, one read
    assert statements[1].startswith('INSERT INTO "logs_requestlog"')
    # The cost, from the worker's copy of the prices, checked in the row's own write.
    assert statements[2].startswith('UPDATE "logs_requestlog"')
    assert "prices_pricetableversion" in statements[2]
    assert RequestLog.objects.get(request_id=_last_id()).cost_usd is not None


def _last_id():
    return RequestLog.objects.order_by("-id").values_list("request_id", flat=True).first()


def test_prices_changed_since_the_worker_loaded_them_are_read_again_row_and_spend_corrected(
    client, key_to
):
    price = price_create(actor="tests", model="gpt-test", input=Decimal("1"), output=Decimal("2"))
    key, raw = key_to()
    limits_set(key=key, budget_usd=Decimal(1000))
    _warm(client, raw)
    # Another worker (or instance) changes the price while the answer is on its way (after
    # the admission, which priced the worst case): this process's copy is now stale.
    statements = _statements(
        client,
        raw,
        while_answering=lambda: price_update(
            actor="tests", price=price, input=Decimal("3"), output=Decimal("7")
        ),
    )

    # The finished row read the new version, so the request priced itself again.
    assert any(s.startswith('SELECT "prices_price"') for s in statements), statements
    rows = list(RequestLog.objects.order_by("id"))
    first, second = rows[0], rows[1]
    tokens_in, tokens_out = second.prompt_tokens, second.completion_tokens
    assert second.cost_usd == (3 * tokens_in + 7 * tokens_out) / Decimal(10**6)
    assert first.cost_usd == (1 * tokens_in + 2 * tokens_out) / Decimal(10**6)
    spent = limits_view_for_keys(keys=[key])[key.pk].spend
    assert spent["spent_usd"] == first.cost_usd + second.cost_usd
    assert spent["reserved_usd"] == 0
    # And the next request needs no second look.
    again = _statements(client, raw)
    assert not any(s.startswith('SELECT "prices_price"') for s in again), again
    assert sum("prices_pricetableversion" in s for s in again) == 2, again  # versions, write


def test_every_limit_rides_with_the_rows_own_writes(client, key_to):
    price_create(actor="tests", model="gpt-test", input=Decimal("1"), output=Decimal("2"))
    key, raw = key_to()
    limits_set(
        key=key,
        rpm_limit=10_000,
        tpm_limit=10**12,
        max_parallel=100,
        budget_usd=Decimal(1000),
        budget_tokens=10**12,
    )
    _warm(client, raw)
    statements = _statements(client, raw)
    if connection.vendor == "postgresql":
        # One round trip each: the admission in the insert, the settlement in the update.
        assert len(statements) == 3, statements
        assert "limits_admit(" in statements[1] and "INSERT INTO" in statements[1]
        assert (
            statements[2].startswith("WITH also0 AS")
            and 'UPDATE "logs_requestlog"' in (statements[2])
            and "prices_pricetableversion" in statements[2]
        )
    else:
        # SQLite: the admission's transaction also inserts the row; nothing between them.
        begin = statements.index("BEGIN IMMEDIATE")
        commit = statements.index("COMMIT", begin)
        opening = statements[begin:commit]
        assert any("limits_secondcount" in s for s in opening)
        assert opening[-1].startswith('INSERT INTO "logs_requestlog"')
        assert sum(s.startswith('INSERT INTO "logs_requestlog"') for s in statements) == 1
    assert RequestLog.objects.filter(status_code=200).count() == 2


def test_a_refused_request_has_the_row_its_admission_opened_and_finished(client, key_to):
    key, raw = key_to()
    limits_set(key=key, rpm_limit=1)
    _statements(client, raw)
    response = client.post(
        "/v1/chat/completions",
        BODY,
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {raw}",
    )
    assert response.status_code == 429
    assert json.loads(response.content)["error"]["code"] == "rate_limit_exceeded"
    refused = RequestLog.objects.get(status_code=429)
    assert refused.state == RequestLog.State.FINISHED
    assert str(refused.request_id) == response["X-Gateway-Request-ID"]
    assert refused.model == "gpt-test" and refused.api_key_id == key.pk
    assert RequestLog.objects.count() == 2
