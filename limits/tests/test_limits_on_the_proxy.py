"""Limits as a client of the proxy sees them: 429s in its dialect with Retry-After, the
same admission on every path, budgets reserved before and settled after each request."""

from __future__ import annotations

import json
import threading
import time

import anthropic
import openai
import pytest
import requests

from limits.services import limits_set
from logs.models import RequestLog
from testing.helpers import finished_row, wait_until

CHAT = {"model": "gpt-test", "messages": [{"role": "user", "content": "hi"}]}


def spend(route) -> dict:
    from limits.selectors import limits_view_for_keys

    return limits_view_for_keys(keys=[type(route.key).objects.get(pk=route.key.pk)])[
        route.key.pk
    ].spend


def post(route, path, body, **headers):
    return requests.post(
        f"{route.gateway_url}/v1/{path}",
        json=body,
        headers={"Authorization": f"Bearer {route.raw_key}", **headers},
        timeout=15,
    )


def test_over_rpm_the_sdks_raise_rate_limit_error_and_the_refusal_has_its_row(
    openai_route, provider
):
    limits_set(key=openai_route.key, rpm_limit=2)
    client = openai_route.openai()
    for _ in range(2):
        client.chat.completions.create(**CHAT)
    with pytest.raises(openai.RateLimitError) as caught:
        client.chat.completions.create(**CHAT)
    response = caught.value.response
    assert response.json()["error"]["code"] == "rate_limit_exceeded"
    assert response.json()["error"]["type"] == "rate_limit_error"
    # Counted in whole seconds: the oldest request leaves the count 60 to 61 s after it came.
    assert 1 <= int(response.headers["Retry-After"]) <= 61
    row = finished_row(response.headers["x-gateway-request-id"])
    assert row.status_code == 429 and "2 requests per minute" in row.error
    assert len(provider.requests) == 2

    with pytest.raises(anthropic.RateLimitError):
        openai_route.anthropic().messages.create(
            model="claude-test", max_tokens=10, messages=[{"role": "user", "content": "hi"}]
        )


def test_every_path_goes_through_the_same_admission(openai_route, provider):
    limits_set(key=openai_route.key, rpm_limit=1)
    assert post(openai_route, "chat/completions", CHAT).status_code == 200
    auth = {"Authorization": f"Bearer {openai_route.raw_key}"}
    url = f"{openai_route.gateway_url}/v1"
    answers = {
        "chat": post(openai_route, "chat/completions", CHAT),
        "responses": post(openai_route, "responses", {"model": "gpt-test", "input": "hi"}),
        "messages": post(
            openai_route,
            "messages",
            {"model": "claude-test", "max_tokens": 5, "messages": []},
            **{"anthropic-version": "2023-06-01"},
        ),
        "models": requests.get(f"{url}/models", headers=auth, timeout=15),
        "one model": requests.get(f"{url}/models/gpt-test", headers=auth, timeout=15),
        "unknown": requests.delete(f"{url}/some/unknown/path?x=1", headers=auth, timeout=15),
        "upstreams": requests.get(f"{url}/upstreams", headers=auth, timeout=15),
    }
    for name, response in answers.items():
        assert response.status_code == 429, name
        assert response.headers["Retry-After"].isdigit(), name
        error = response.json()["error"]
        code = error.get("code") or error.get("type")
        assert code == "rate_limit_exceeded", name
    assert answers["messages"].json()["type"] == "error"  # Anthropic's shape
    assert len(provider.requests) == 1
    refused = RequestLog.objects.filter(status_code=429)
    wait_until(lambda: refused.count() == len(answers))


def test_a_budget_is_reserved_then_settled_to_the_recorded_tokens(openai_route):
    limits_set(key=openai_route.key, budget_tokens=100_000, budget_period="day")
    client = openai_route.openai()
    client.chat.completions.create(**CHAT, max_tokens=100)  # fake usage: 11 + 3 tokens
    stream = client.chat.completions.create(
        **CHAT, max_tokens=100, stream=True, stream_options={"include_usage": True}
    )
    list(stream)
    wait_until(lambda: spend(openai_route)["spent_tokens"] == 28)
    now = spend(openai_route)
    assert (now["reserved_tokens"], now["remaining_tokens"]) == (0, 100_000 - 28)


def test_an_upstream_error_spends_nothing(openai_route):
    limits_set(key=openai_route.key, budget_tokens=100_000)
    response = post(openai_route, "chat/completions", CHAT, **{"x-fake-status": "500"})
    assert response.status_code == 500
    finished_row(response.headers["x-gateway-request-id"])
    wait_until(lambda: spend(openai_route)["reserved_tokens"] == 0)
    assert spend(openai_route)["spent_tokens"] == 0


def test_a_request_whose_worst_case_exceeds_the_whole_budget_is_told_to_lower_max_tokens(
    openai_route, provider
):
    limits_set(key=openai_route.key, budget_tokens=1000)
    response = post(openai_route, "chat/completions", {**CHAT, "max_tokens": 5000})
    assert response.status_code == 429
    assert response.json()["error"]["code"] == "budget_exceeded"
    assert "max_tokens" in response.json()["error"]["message"]
    assert "Retry-After" not in response.headers
    # Without an output limit the worst case is BUDGET_DEFAULT_MAX_TOKENS (4096): too big too.
    assert post(openai_route, "chat/completions", CHAT).status_code == 429
    assert post(openai_route, "chat/completions", {**CHAT, "max_tokens": 50}).status_code == 200
    assert len(provider.requests) == 1


def test_a_spent_budget_refuses_until_the_window_resets(openai_route):
    worst = len(json.dumps({**CHAT, "max_tokens": 10}).encode()) + 10
    limits_set(key=openai_route.key, budget_tokens=worst + 5, budget_period="day")
    assert post(openai_route, "chat/completions", {**CHAT, "max_tokens": 10}).status_code == 200
    wait_until(lambda: spend(openai_route)["spent_tokens"] == 14)
    refused = post(openai_route, "chat/completions", {**CHAT, "max_tokens": 10})
    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == "budget_exceeded"
    assert 0 < int(refused.headers["Retry-After"]) <= 86400
    # A request with no model reserves nothing: it still goes through.
    models = requests.get(
        f"{openai_route.gateway_url}/v1/models",
        headers={"Authorization": f"Bearer {openai_route.raw_key}"},
        timeout=15,
    )
    assert models.status_code == 200


def test_max_parallel_refuses_at_once_and_the_sdk_retry_waits_for_retry_after(openai_route):
    limits_set(key=openai_route.key, max_parallel=1)
    slow = threading.Thread(
        target=post,
        args=(openai_route, "chat/completions", {**CHAT, "stream": True}),
        kwargs={"x-fake-chunk-delay-ms": "200", "x-fake-chunks": "4"},
    )
    slow.start()
    wait_until(lambda: RequestLog.objects.filter(state=RequestLog.State.IN_FLIGHT).exists())
    started = time.monotonic()
    refused = post(openai_route, "chat/completions", CHAT)
    assert refused.status_code == 429
    assert refused.headers["Retry-After"] == "1"
    assert time.monotonic() - started < 0.5  # refused at once, never queued
    # The SDK's own retry waits Retry-After (1 s), by when the stream has ended.
    client = openai.OpenAI(
        base_url=f"{openai_route.gateway_url}/v1", api_key=openai_route.raw_key, max_retries=2
    )
    answer = client.chat.completions.with_raw_response.create(**CHAT)
    assert answer.http_response.status_code == 200
    assert time.monotonic() - started >= 1.0
    slow.join()


@pytest.mark.parametrize("scenario", ["client-gone", "reset-mid", "stall-mid"])
def test_a_stream_that_ends_badly_still_releases_its_place(openai_route, provider, scenario):
    limits_set(key=openai_route.key, max_parallel=1, budget_tokens=100_000)
    headers = {"Authorization": f"Bearer {openai_route.raw_key}"}
    body = {**CHAT, "stream": True, "max_tokens": 100}
    if scenario == "client-gone":
        headers |= {"x-fake-chunk-delay-ms": "300", "x-fake-chunks": "20"}
        with requests.post(
            f"{openai_route.gateway_url}/v1/chat/completions",
            json=body,
            headers=headers,
            stream=True,
            timeout=15,
        ) as response:
            next(response.iter_content(1))
        provider.wait_for_disconnects(1)
    else:
        headers |= {"x-fake-scenario": scenario}
        with pytest.raises(requests.RequestException):
            answer = requests.post(
                f"{openai_route.gateway_url}/v1/chat/completions",
                json=body,
                headers=headers,
                timeout=15,
            )
            assert answer.content is None  # not reached: the body ends abruptly
    finished_row()
    wait_until(lambda: spend(openai_route)["reserved_tokens"] == 0)
    # Usage unknown on a started answer: its whole reservation counts as spent.
    assert spend(openai_route)["spent_tokens"] > 100
    assert post(openai_route, "chat/completions", CHAT).status_code == 200


def test_a_key_with_a_usd_budget_cannot_use_an_unpriced_model(openai_route, provider):
    from decimal import Decimal

    from prices.services import price_create

    price_create(actor="tests", model="gpt-priced", input=Decimal(1), output=Decimal(2))
    limits_set(key=openai_route.key, budget_usd=Decimal("5"))
    with pytest.raises(openai.PermissionDeniedError) as caught:
        openai_route.openai().chat.completions.create(**CHAT)
    error = caught.value.response.json()["error"]
    assert error["code"] == "model_not_allowed"
    assert "no price" in error["message"] and "USD budget" in error["message"]
    assert provider.requests == []
    answer = openai_route.openai().chat.completions.create(**{**CHAT, "model": "gpt-priced"})
    assert answer.usage.total_tokens == 14
    wait_until(lambda: spend(openai_route)["spent_usd"] == Decimal("0.000017"))  # 11x1 + 3x2


@pytest.mark.parametrize("limit", ["tpm_limit", "budget_tokens", "budget_usd"])
def test_a_huge_output_limit_gets_the_normal_answer_and_its_row(openai_route, limit):
    from decimal import Decimal

    from prices.services import price_create

    price_create(actor="tests", model="gpt-test", input=Decimal(1), output=Decimal(2))
    value = {"tpm_limit": 1000, "budget_tokens": 1000, "budget_usd": Decimal(5)}[limit]
    limits_set(key=openai_route.key, **{limit: value})
    response = post(openai_route, "chat/completions", {**CHAT, "max_tokens": 10**30})
    row = finished_row(response.headers["x-gateway-request-id"])
    if limit == "tpm_limit":  # nothing recorded in the minute yet: admitted, the upstream decides
        assert response.status_code == 200
    else:  # reserved at the stated bound, more than the whole budget
        assert response.status_code == 429
        assert response.json()["error"]["code"] == "budget_exceeded"
        assert "max_tokens" in response.json()["error"]["message"]
    assert row.status_code == response.status_code
