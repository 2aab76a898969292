"""cost_usd on every row: per dialect and per ending, against the fake provider's usage.

The fake provider reports 1000 prompt tokens (400 of them cache reads, and for
Anthropic 100 cache writes on top), 200 completion tokens. A stream cut short or left
by its client has no final count, so its cost is unknown (null), never 0.
"""

from __future__ import annotations

import socket
from decimal import Decimal

import pytest
import requests

from prices.services import price_create, price_update
from testing.helpers import finished_row

D = Decimal
RATES = {"input": D("2.5"), "output": D("10"), "cache_read": D("1.25"), "cache_write": D("3.75")}
USAGE_HEADERS = {
    "x-fake-prompt-tokens": "1000",
    "x-fake-completion-tokens": "200",
    "x-fake-cache-read": "400",
    "x-fake-cache-write": "100",
}
# OpenAI (chat and Responses): the cached tokens are inside the prompt count.
OPENAI_COST = (600 * RATES["input"] + 400 * RATES["cache_read"] + 200 * RATES["output"]) / 10**6
# Anthropic: input_tokens exclude the cache reads and writes, billed on top.
ANTHROPIC_COST = (
    1000 * RATES["input"] + 400 * RATES["cache_read"] + 100 * RATES["cache_write"]
    + 200 * RATES["output"]
) / 10**6  # fmt: skip

CHAT = {"model": "priced-model", "messages": [{"role": "user", "content": "hi"}]}
ENDPOINTS = {
    "chat": ("/v1/chat/completions", CHAT),
    "chat+usage": (
        "/v1/chat/completions",
        {**CHAT, "stream_options": {"include_usage": True}},
    ),
    "responses": ("/v1/responses", {"model": "priced-model", "input": "hi"}),
    "messages": ("/v1/messages", {**CHAT, "max_tokens": 50}),
}


def _post(route, endpoint: str, *, stream: bool, **headers) -> requests.Response:
    path, body = ENDPOINTS[endpoint]
    return requests.post(
        f"{route.gateway_url}{path}",
        json={**body, "stream": stream},
        headers={"Authorization": f"Bearer {route.raw_key}", **USAGE_HEADERS, **headers},
        timeout=15,
    )


@pytest.fixture
def priced(gateway):
    return price_create(actor="tests", model="priced-*", **RATES)


@pytest.mark.parametrize(
    ("provider_name", "endpoint", "stream", "expected"),
    [
        ("openai", "chat", False, OPENAI_COST),
        ("openai", "chat+usage", True, OPENAI_COST),
        ("openai", "responses", False, OPENAI_COST),
        ("openai", "responses", True, OPENAI_COST),
        ("anthropic", "messages", False, ANTHROPIC_COST),
        ("anthropic", "messages", True, ANTHROPIC_COST),
    ],
)
def test_a_finished_answer_is_priced_per_dialect(
    make_route, priced, provider_name, endpoint, stream, expected
):
    route = make_route(provider=provider_name, timeout=5)
    response = _post(route, endpoint, stream=stream)
    assert response.status_code == 200
    row = finished_row(response.headers["X-Gateway-Request-ID"])
    assert (row.prompt_tokens, row.completion_tokens) == (1000, 200)
    assert row.cache_read_tokens == 400
    assert row.cost_usd == expected
    listed = route_admin_row(row)
    assert D(listed["cost_usd"]) == expected


def route_admin_row(row) -> dict:
    from logs.api.serializers import RequestLogSerializer

    return RequestLogSerializer(row).data


@pytest.mark.parametrize(
    ("provider_name", "endpoint"),
    [("openai", "chat+usage"), ("openai", "responses"), ("anthropic", "messages")],
)
def test_a_stream_cut_short_has_an_unknown_cost(make_route, priced, provider_name, endpoint):
    route = make_route(provider=provider_name, timeout=5)
    with pytest.raises(requests.RequestException):
        _post(route, endpoint, stream=True, **{"x-fake-scenario": "close-mid"})
    row = finished_row()
    assert row.error.startswith("stream cut short")
    assert row.cost_usd is None


@pytest.mark.parametrize(
    ("provider_name", "path", "body"),
    [
        ("openai", "/v1/chat/completions",
         b'{"model": "priced-model", "stream": true, "messages": []}'),
        ("anthropic", "/v1/messages",
         b'{"model": "priced-model", "stream": true, "max_tokens": 9, "messages": []}'),
    ],
)  # fmt: skip
def test_a_client_gone_mid_stream_leaves_an_unknown_cost(
    gateway, make_route, priced, provider_name, path, body
):
    route = make_route(provider=provider_name, timeout=5)
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Authorization: Bearer {route.raw_key}\r\nContent-Type: application/json\r\n"
        "x-fake-chunks: 200\r\nx-fake-chunk-delay-ms: 50\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", gateway.port), timeout=10) as sock:
        sock.sendall(head + body)
        received = b""
        while b"chunk-1 " not in received:
            received += sock.recv(65536)
    row = finished_row()
    assert row.error == "client disconnected"
    assert row.cost_usd is None


def test_no_price_means_an_unknown_cost_never_zero(openai_route):
    response = _post(openai_route, "chat", stream=False)
    row = finished_row(response.headers["X-Gateway-Request-ID"])
    assert row.prompt_tokens == 1000
    assert row.cost_usd is None


def test_a_price_change_applies_to_later_requests_and_never_rewrites_rows(openai_route, priced):
    first = finished_row(_post(openai_route, "chat", stream=False).headers["X-Gateway-Request-ID"])
    assert first.cost_usd == OPENAI_COST
    price_update(actor="tests", price=priced, output=RATES["output"] * 2)
    second = finished_row(_post(openai_route, "chat", stream=False).headers["X-Gateway-Request-ID"])
    assert second.cost_usd == OPENAI_COST + 200 * RATES["output"] / 10**6
    first.refresh_from_db()
    assert first.cost_usd == OPENAI_COST


@pytest.fixture(scope="module")
def second_instance(start_gateway):
    """Another gunicorn on the same database: a second instance of the gateway."""
    return start_gateway(workers=2)


def test_a_price_change_reaches_every_worker_of_every_instance_at_once(
    gateway, second_instance, make_route, priced
):
    route = make_route(timeout=5)
    instances = [gateway.url, second_instance.url]

    def costs(rounds: int) -> list:
        ids = []
        for _ in range(rounds):
            for url in instances:
                response = requests.post(
                    f"{url}/v1/chat/completions",
                    json=ENDPOINTS["chat"][1],
                    headers={"Authorization": f"Bearer {route.raw_key}", **USAGE_HEADERS},
                    timeout=15,
                )
                ids.append(response.headers["X-Gateway-Request-ID"])
        return [finished_row(i).cost_usd for i in ids]

    assert set(costs(8)) == {OPENAI_COST}  # every worker has the old price cached now
    price_update(actor="tests", price=priced, input=RATES["input"] * 2)
    assert set(costs(8)) == {OPENAI_COST + 600 * RATES["input"] / 10**6}
