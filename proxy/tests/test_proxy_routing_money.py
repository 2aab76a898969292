"""Routing meets money: cost is priced for the model sent to the upstream that answered,
and a request that fails over is admitted once and settled once."""

from __future__ import annotations

from decimal import Decimal

import requests

from limits.services import limits_set
from prices.services import price_create
from testing.helpers import finished_row

D = Decimal
USAGE = {"x-fake-prompt-tokens": "1000", "x-fake-completion-tokens": "200"}


def chat(gateway, raw_key, model="fast") -> requests.Response:
    return requests.post(
        f"{gateway.url}/v1/chat/completions",
        json={"model": model, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 10},
        headers={"Authorization": f"Bearer {raw_key}", **USAGE},
        timeout=15,
    )


def test_cost_is_for_the_aliased_model_at_the_answering_upstreams_price(
    gateway, provider, failing_provider, make_upstream, make_key
):
    down = make_upstream(name="money-down", base_url=failing_provider.base_url, priority=0)
    up = make_upstream(
        name="money-up", base_url=provider.base_url, priority=1, aliases={"fast": "real-mini"}
    )
    _, raw = make_key(upstreams=[down, up])
    price_create(
        actor="tests", model="fast", input=D("100"), output=D("100")
    )  # the name asked for: not used
    price_create(actor="tests", model="real-mini", input=D("1"), output=D("2"))
    price_create(actor="tests", model="real-mini", upstream_id=up.pk, input=D("3"), output=D("4"))
    response = chat(gateway, raw)
    assert response.status_code == 200
    row = finished_row(response.headers["x-gateway-request-id"])
    assert (row.upstream_id, row.model, row.upstream_model, row.attempts) == (
        up.pk,
        "fast",
        "real-mini",
        2,
    )
    assert row.cost_usd == (1000 * D(3) + 200 * D(4)) / 10**6


def test_a_request_that_fails_over_is_admitted_once_and_settled_once(
    gateway, provider, failing_provider, make_upstream, make_key
):
    down = make_upstream(name="once-down", base_url=failing_provider.base_url, priority=0)
    up = make_upstream(name="once-up", base_url=provider.base_url, priority=1)
    key, raw = make_key(upstreams=[down, up])
    limits_set(key=key, max_parallel=1, rpm_limit=2)
    # Admitted twice, the first request would refuse itself (max_parallel 1); never
    # settled, the second would be refused too.
    assert chat(gateway, raw, model="m").status_code == 200
    assert chat(gateway, raw, model="m").status_code == 200
    third = chat(gateway, raw, model="m")
    assert third.status_code == 429  # rpm_limit 2: two admissions, not four
    assert third.json()["error"]["code"] == "rate_limit_exceeded"


def test_a_usd_budget_reserves_at_the_price_of_the_aliased_model(
    gateway, provider, make_upstream, make_key
):
    up = make_upstream(name="dear-alias", base_url=provider.base_url, aliases={"fast": "dear"})
    key, raw = make_key(upstreams=[up])
    price_create(actor="tests", model="fast", input=D("1"), output=D("2"))  # not what is sent
    price_create(actor="tests", model="dear", input=D("75"), output=D("150"))
    body_bytes = len(
        b'{"model": "fast", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 10}'
    )
    at_fast = (body_bytes * D(1) + 10 * D(2)) / 10**6
    at_dear = (body_bytes * D(75) + 10 * D(150)) / 10**6
    limits_set(key=key, budget_usd=(at_fast + at_dear) / 2)
    refused = chat(gateway, raw)
    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == "budget_exceeded"
    assert finished_row(refused.headers["x-gateway-request-id"]).status_code == 429
    assert provider.requests == []
    limits_set(key=key, budget_usd=at_dear)
    admitted = chat(gateway, raw)
    assert admitted.status_code == 200
    row = finished_row(admitted.headers["x-gateway-request-id"])
    assert (row.upstream_model, row.cost_usd) == ("dear", (1000 * D(75) + 200 * D(150)) / 10**6)
