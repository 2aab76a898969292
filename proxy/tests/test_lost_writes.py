"""A database write that fails mid-request, in-process: the row is still finished when it
was opened, and the key's reservation is still settled, exactly once."""

from __future__ import annotations

import json

import pytest
from django.db import OperationalError

from limits.models import Reservation
from limits.selectors import limits_view_for_keys
from limits.services import limits_set
from logs.models import RequestLog
from proxy import views
from testing.helpers import redis_test_url

pytestmark = pytest.mark.django_db(transaction=True)

BODY = json.dumps(
    {"model": "gpt-test", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 50}
)


@pytest.fixture
def limited_key(provider, make_upstream, make_key):
    key, raw = make_key(upstreams=[make_upstream(base_url=provider.base_url)])
    limits_set(key=key, max_parallel=1, budget_tokens=100_000)
    return key, raw


def spend(key) -> dict:
    return limits_view_for_keys(keys=[type(key).objects.get(pk=key.pk)])[key.pk].spend


def chat(client, raw_key):
    response = client.post(
        "/v1/chat/completions",
        BODY,
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {raw_key}",
    )
    if response.streaming:
        b"".join(response.streaming_content)
        response.close()
    return response


@pytest.mark.parametrize("counters", ["database", "redis"])
def test_a_failed_last_write_still_settles_the_reservation(
    client, limited_key, monkeypatch, settings, counters
):
    settings.REDIS_URL = redis_test_url() if counters == "redis" else ""
    key, raw = limited_key

    def locked(**fields):
        raise OperationalError("database is locked")

    with monkeypatch.context() as patch:
        patch.setattr(views, "log_finish", locked)
        assert chat(client, raw).status_code == 200
    # Settled (in Redis, already with the lost write): the place is free and the usage
    # (11 + 3 tokens) is spent, once.
    assert (spend(key)["reserved_tokens"], spend(key)["spent_tokens"]) == (0, 14)
    assert chat(client, raw).status_code == 200  # max_parallel 1: not refused
    assert (spend(key)["reserved_tokens"], spend(key)["spent_tokens"]) == (0, 28)


def test_a_database_error_after_the_row_was_opened_still_finishes_it(
    client, limited_key, monkeypatch
):
    def cut(**kwargs):
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(views, "forward_with_failover", cut)
    key, raw = limited_key
    response = chat(client, raw)
    assert response.status_code == 503
    row = RequestLog.objects.get()
    assert (row.state, row.status_code) == (RequestLog.State.FINISHED, 503)
    assert str(row.request_id) == response["X-Gateway-Request-ID"]
    assert not Reservation.objects.exists()  # settled too
