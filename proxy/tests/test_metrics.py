"""GET /metrics on a real gunicorn with 2 workers: after known traffic, each series has
moved by exactly what was sent, whichever worker answers the scrape."""

from __future__ import annotations

import secrets
from decimal import Decimal

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from gatewaysite import metrics
from logs.models import RequestLog
from prices.services import price_create

METRICS_TOKEN = "metrics-" + secrets.token_urlsafe(16)
CHAT = {"model": "metered-model", "messages": [{"role": "user", "content": "hi"}]}
MESSAGES = {
    "model": "metered-claude",
    "max_tokens": 20,
    "messages": [{"role": "user", "content": "hi"}],
}


@pytest.fixture(scope="module")
def metered(start_gateway):
    return start_gateway(workers=2, env={"METRICS_TOKEN": METRICS_TOKEN})


def scrape(gateway) -> dict[tuple[str, tuple], float]:
    # A new connection per scrape, so the kernel hands scrapes to either worker.
    answer = requests.get(
        f"{gateway.url}/metrics",
        headers={"Authorization": f"Bearer {METRICS_TOKEN}", "Connection": "close"},
        timeout=10,
    )
    assert answer.status_code == 200
    assert answer.headers["Content-Type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(answer.text):
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return samples


def value(samples, name: str, **labels) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def moved(before, after, name: str, **labels) -> float:
    return round(value(after, name, **labels) - value(before, name, **labels), 9)


@pytest.mark.parametrize(
    ("status", "expected"),
    [(200, "2xx"), (201, "2xx"), (302, "3xx"), (404, "4xx"), (429, "4xx"), (503, "5xx"),
     (529, "5xx"), (0, "none"), (99, "none")],
)  # fmt: skip
def test_status_class(status, expected):
    assert metrics.status_class(status) == expected


def test_metrics_need_the_token(metered, live_gateway):
    url = f"{metered.url}/metrics"
    assert requests.get(url, timeout=10).status_code == 403
    wrong = {"Authorization": f"Bearer {METRICS_TOKEN}x"}
    assert requests.get(url, headers=wrong, timeout=10).status_code == 403
    # The session's gateway has no METRICS_TOKEN: there is no /metrics at all.
    assert requests.get(f"{live_gateway.url}/metrics", timeout=10).status_code == 404


def test_each_series_moves_by_what_was_sent(metered, make_route, provider):
    openai_route = make_route(name="metered-openai", gateway_url=metered.url)
    anthropic_route = make_route(
        name="metered-anthropic", provider="anthropic", gateway_url=metered.url
    )
    price_create(actor="tests", model="metered-model", input=Decimal("2"), output=Decimal("8"))
    before = scrape(metered)

    json_calls, stream_calls, refused = 12, 4, 5
    headers = {"Authorization": f"Bearer {openai_route.raw_key}", "Connection": "close",
               "x-fake-prompt-tokens": "30", "x-fake-completion-tokens": "7",
               "x-fake-cache-read": "10"}  # fmt: skip
    for _ in range(json_calls):
        answer = requests.post(
            f"{metered.url}/v1/chat/completions", json=CHAT, headers=headers, timeout=10
        )
        assert answer.status_code == 200
    for _ in range(stream_calls):
        answer = requests.post(
            f"{metered.url}/v1/chat/completions",
            json={**CHAT, "stream": True},
            headers=headers,
            timeout=10,
        )
        assert answer.status_code == 200 and "data: [DONE]" in answer.text
    claude = anthropic_route.anthropic(default_headers={"x-fake-completion-tokens": "5"})
    claude.messages.create(**MESSAGES)
    for _ in range(refused):
        answer = requests.post(
            f"{metered.url}/v1/chat/completions",
            json=CHAT,
            headers={"Authorization": "Bearer sk-auto-" + "x" * 43, "Connection": "close"},
            timeout=10,
        )
        assert answer.status_code == 401

    after = scrape(metered)
    served = json_calls + stream_calls
    ok = {"upstream": "metered-openai", "dialect": "openai", "status_class": "2xx"}
    assert moved(before, after, "gateway_requests_total", **ok) == served
    assert moved(before, after, "gateway_requests_total", upstream="metered-anthropic",
                 dialect="anthropic", status_class="2xx") == 1  # fmt: skip
    assert moved(before, after, "gateway_requests_total", upstream="none",
                 dialect="openai", status_class="4xx") == refused  # fmt: skip
    assert moved(before, after, "gateway_refusals_total", code="invalid_api_key") == refused

    # Tokens and cost: what the log rows recorded, summed.
    rows = RequestLog.objects.filter(upstream=openai_route.upstream)
    assert rows.count() == served
    assert moved(before, after, "gateway_tokens_total", upstream="metered-openai",
                 kind="prompt") == served * 30  # fmt: skip
    assert moved(before, after, "gateway_tokens_total", upstream="metered-openai",
                 kind="completion") == served * 7  # fmt: skip
    assert moved(before, after, "gateway_tokens_total", upstream="metered-openai",
                 kind="cache_read") == served * 10  # fmt: skip
    assert moved(before, after, "gateway_tokens_total", upstream="metered-anthropic",
                 kind="completion") == 5  # fmt: skip
    recorded_cost = sum(row.cost_usd for row in rows)
    assert recorded_cost > 0
    assert moved(before, after, "gateway_cost_usd_total", upstream="metered-openai") == (
        pytest.approx(float(recorded_cost), rel=1e-9)
    )

    # Histograms: one observation per request that reached the upstream.
    for name in (
        "gateway_request_duration_seconds_count",
        "gateway_time_to_first_byte_seconds_count",
    ):
        assert moved(before, after, name, upstream="metered-openai") == served
    assert (
        moved(before, after, "gateway_request_duration_seconds_count", upstream="none") == refused
    )
    assert value(after, "gateway_requests_in_flight") == 0

    # Every worker's samples are in every scrape, whichever worker answers it.
    assert all(scrape(metered) == after for _ in range(6))

    text = requests.get(
        f"{metered.url}/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}, timeout=10
    ).text
    for secret in (openai_route.raw_key, openai_route.secret, anthropic_route.raw_key):
        assert secret not in text
    assert "metered-model" not in text and "metered-claude" not in text


def test_local_answers_and_refusals_before_the_view_leave_nothing_in_flight(metered, make_route):
    route = make_route(name="metered-models", gateway_url=metered.url)
    before = scrape(metered)
    auth = {"Authorization": f"Bearer {route.raw_key}", "Connection": "close"}
    for path in ("models", "models/fake-model", "upstreams"):
        answer = requests.get(f"{metered.url}/v1/{path}", headers=auth, timeout=10)
        assert answer.status_code == 200, path
    for _ in range(3):  # refused by Django before the view runs (not an allowed host)
        answer = requests.get(
            f"{metered.url}/v1/models", headers={**auth, "Host": "evil.example"}, timeout=10
        )
        assert answer.status_code == 400
        assert answer.json()["error"]["code"] == "invalid_request"
    after = scrape(metered)
    assert value(after, "gateway_requests_in_flight") == 0
    assert moved(before, after, "gateway_requests_total", upstream="none",
                 dialect="openai", status_class="2xx") == 3  # fmt: skip
    assert moved(before, after, "gateway_requests_total", upstream="none",
                 dialect="openai", status_class="4xx") == 3  # fmt: skip


def test_failed_attempts_and_cooling_are_counted_per_upstream(metered, make_route):
    from testing.helpers import free_port

    route = make_route(
        name="metered-down", gateway_url=metered.url, base_url=f"http://127.0.0.1:{free_port()}/v1"
    )
    before = scrape(metered)
    for _ in range(2):
        answer = requests.post(
            f"{metered.url}/v1/chat/completions",
            json=CHAT,
            headers={"Authorization": f"Bearer {route.raw_key}", "Connection": "close"},
            timeout=15,
        )
        assert answer.status_code == 502
    after = scrape(metered)
    failures = sum(
        v - before.get(k, 0.0)
        for k, v in after.items()
        if k[0] == "gateway_upstream_attempt_failures_total"
        and dict(k[1]).get("upstream") == "metered-down"
    )
    assert failures == 2
    assert value(after, "gateway_upstream_cooling", upstream="metered-down") == 0  # 2 < 5


def test_keys_near_their_budget_are_counted_at_scrape_time(metered, transactional_db, make_key):
    """The third example alert's series: a count of keys at 80% of their budget or more."""
    import datetime as dt

    from limits import windows
    from limits.models import Spend
    from limits.services import limits_set

    before = value(scrape(metered), "gateway_keys_near_budget")
    start = windows.window_start("day", dt.datetime.now(dt.UTC))
    for spent in ("8.5", "1", "9.9"):
        key, _ = make_key(name=f"spent {spent}")
        limits = limits_set(key=key, budget_usd=Decimal("10"), budget_period="day")
        Spend.objects.create(limits=limits, window_start=start, spent_usd=Decimal(spent))
    assert value(scrape(metered), "gateway_keys_near_budget") - before == 2
