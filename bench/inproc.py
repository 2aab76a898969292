"""The benchmark's Django side, run as its own process with the bench database's environment.

    python bench/inproc.py provision --openai-url URL --anthropic-url URL   # prints JSON keys
    python bench/inproc.py costs --iterations 5000                          # prints JSON timings
    python bench/inproc.py requests --key KEY --count 100                   # whole requests

`requests` sends whole OpenAI chat requests through Django's test client, in this one
process, with no server and no gevent: what the gateway's own code executes per request
(bench/instructions.py counts its instructions under callgrind).

`provision` creates the upstreams and keys through the services (as the admin API would);
`costs` times the per-request work of the hot path in-process: the key check on a warm
cache, the upstream choice, the two log writes, and pricing the answer (price lookup on a
warm cache, with its version read, and the cost).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import uuid
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _setup() -> None:
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gatewaysite.settings")
    import django

    django.setup()


def provision(openai_url: str, anthropic_url: str) -> dict:
    from keys.services import key_create
    from limits.services import limits_set
    from prices.services import price_create
    from upstreams.services import upstream_create

    openai_up = upstream_create(
        actor="bench",
        name="bench-openai",
        provider="openai",
        base_url=openai_url,
        api_key="sk-bench-upstream-openai-secret",
        is_default=True,
        timeout=30,
    )
    anthropic_up = upstream_create(
        actor="bench",
        name="bench-anthropic",
        provider="anthropic",
        base_url=anthropic_url,
        api_key="sk-ant-bench-upstream-secret",
        timeout=30,
    )
    # One key per dialect, so the choice never depends on which upstream is the default.
    _, openai_key = key_create(actor="bench", name="bench openai", upstream_ids=[openai_up.pk])
    _, anthropic_key = key_create(
        actor="bench", name="bench anthropic", upstream_ids=[anthropic_up.pk]
    )
    # The feature rows (section 5): the same OpenAI calls with rate limits set on the key,
    # then with every limit and both budgets. Limits far above what the bench sends, so
    # nothing is refused and each request pays the whole admission and settlement.
    price_create(actor="bench", model="gpt-bench", input=Decimal("2.5"), output=Decimal("10"))
    limited, limited_key = key_create(
        actor="bench", name="bench limits", upstream_ids=[openai_up.pk]
    )
    limits_set(key=limited, rpm_limit=2_000_000_000, tpm_limit=10**15, max_parallel=1_000_000)
    budgeted, budget_key = key_create(
        actor="bench", name="bench budget", upstream_ids=[openai_up.pk]
    )
    limits_set(
        key=budgeted,
        rpm_limit=2_000_000_000,
        tpm_limit=10**15,
        max_parallel=1_000_000,
        budget_usd=Decimal(10**9),
        budget_tokens=10**15,
    )
    return {
        "openai_key": openai_key,
        "anthropic_key": anthropic_key,
        "limits_key": limited_key,
        "budget_key": budget_key,
    }


def _stats(samples: list[float]) -> dict:
    ordered = sorted(samples)
    n = len(ordered)
    return {
        "n": n,
        "mean_us": sum(ordered) / n * 1e6,
        "p50_us": ordered[n // 2] * 1e6,
        "p99_us": ordered[min(n - 1, int(n * 0.99))] * 1e6,
    }


def costs(iterations: int) -> dict:
    from django.db import connection

    from keys.selectors import key_authenticate
    from keys.services import key_create
    from logs.services import log_finish, log_open
    from prices.cost import cost_usd
    from prices.selectors import price_for
    from prices.services import price_create
    from proxy.usage import Usage
    from upstreams.selectors import upstream_candidates, upstream_choose
    from upstreams.services import upstream_create

    perf = time.perf_counter
    upstream = upstream_create(
        actor="bench",
        name=f"cost-{uuid.uuid4().hex[:8]}",
        provider="openai",
        base_url="http://127.0.0.1:9/v1",
        api_key="sk-bench-cost-secret",
    )
    key, raw = key_create(actor="bench", name="bench cost", upstream_ids=[upstream.pk])
    for _ in range(200):  # warm the key cache and the upstream registry
        grant = key_authenticate(raw_key=raw)
        upstream_choose(upstream_ids=grant.upstream_ids, requested_name=None, dialect="openai")

    auth = []
    for _ in range(iterations):
        started = perf()
        key_authenticate(raw_key=raw)
        auth.append(perf() - started)

    choose = []
    for _ in range(iterations):
        started = perf()
        upstream_choose(upstream_ids=grant.upstream_ids, requested_name=None, dialect="openai")
        choose.append(perf() - started)

    # Routing by model: three upstreams serving gpt-* (two at priority 0 weighted 3:1, one
    # at priority 1), one serving claude-* and one with an alias, as an operator would set.
    routed = [
        upstream_create(
            actor="bench",
            name=f"route-{uuid.uuid4().hex[:8]}",
            provider=provider,
            base_url="http://127.0.0.1:9/v1",
            api_key="sk-bench-route-secret",
            models=models,
            aliases=aliases,
            priority=priority,
            weight=weight,
        )
        for provider, models, aliases, priority, weight in (
            ("openai", ["gpt-4o", "gpt-4.1*", "o3*"], {}, 0, 3),
            ("azure", ["gpt-4o*"], {"fast": "gpt-4o-mini"}, 0, 1),
            ("openai", ["gpt-*"], {}, 1, 1),
            ("anthropic", ["claude-*"], {}, 0, 1),
            ("openai", [], {"cheap": "gpt-4o-mini"}, 2, 1),
        )
    ]
    _, routed_raw = key_create(
        actor="bench",
        name="bench routing",
        upstream_ids=[u.pk for u in routed],
        models=["gpt-*", "claude-*"],
    )
    routed_grant = key_authenticate(raw_key=routed_raw)

    def candidates():
        return upstream_candidates(
            upstream_ids=routed_grant.upstream_ids,
            requested_name=None,
            dialect="openai",
            model="gpt-4o",
            allowed_models=routed_grant.models,
        )

    for _ in range(200):
        candidates()
    routing = []
    for _ in range(iterations):
        started = perf()
        candidates()
        routing.append(perf() - started)

    def log_pair(release: bool) -> float:
        started = perf()
        log_id = log_open(
            request_id=uuid.uuid4(),
            method="POST",
            path="/v1/chat/completions",
            api_key_id=key.pk,
            upstream_id=upstream.pk,
            model="gpt-bench",
            is_stream=False,
        )
        if release:
            connection.close()  # as the proxy does before relaying (back to the pool)
        log_finish(
            log_id=log_id,
            status_code=200,
            duration_ms=1,
            ttfb_ms=1,
            prompt_tokens=11,
            completion_tokens=3,
            total_tokens=14,
            cache_read_tokens=0,
        )
        return perf() - started

    logs = [log_pair(False) for _ in range(iterations)]

    # A realistic table: 200 exact names and 20 patterns, one of them this upstream's own.
    for i in range(200):
        price_create(
            actor="bench", model=f"bench-model-{i}", input=Decimal("2.5"), output=Decimal("10")
        )
    for i in range(20):
        price_create(
            actor="bench", model=f"bench-family-{i}-*", input=Decimal("1"), output=Decimal("4")
        )
    price_create(
        actor="bench",
        model="gpt-bench*",
        upstream_id=upstream.pk,
        input=Decimal(3),
        output=Decimal(9),
    )
    usage = Usage(
        prompt_tokens=1000, completion_tokens=200, total_tokens=1200, cache_read_tokens=400
    )
    pricing = []
    for _ in range(iterations):
        started = perf()
        cost_usd(rates=price_for(model="gpt-bench", upstream_id=upstream.pk), usage=usage)
        pricing.append(perf() - started)

    result = {
        "vendor": connection.vendor,
        "key_authenticate": _stats(auth),
        "upstream_choose": _stats(choose),
        "upstream_candidates": _stats(routing),
        "log_open_finish": _stats(logs),
        "price_and_cost": _stats(pricing),
    }
    if connection.vendor != "sqlite":
        released = [log_pair(True) for _ in range(iterations)]
        result["log_open_finish_released"] = _stats(released)
    return result


CHAT_BODY = json.dumps(
    {"model": "gpt-bench", "messages": [{"role": "user", "content": "Say hello."}]}
)


def requests_through_django(key: str, count: int) -> dict:
    """`count` whole JSON requests with `key`, in-process; CPU time per request."""
    from django.test import Client

    client = Client(HTTP_HOST="127.0.0.1")

    def one() -> None:
        response = client.post(
            "/v1/chat/completions",
            CHAT_BODY,
            content_type="application/json",
            HTTP_AUTHORIZATION=f"Bearer {key}",
        )
        b"".join(response.streaming_content)
        response.close()
        if response.status_code != 200:
            raise SystemExit(f"bench: a request answered {response.status_code}")

    started = time.process_time()
    for _ in range(count):
        one()
    return {"count": count, "cpu_us": (time.process_time() - started) * 1e6 / max(1, count)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    prov = sub.add_parser("provision")
    prov.add_argument("--openai-url", required=True)
    prov.add_argument("--anthropic-url", required=True)
    cost = sub.add_parser("costs")
    cost.add_argument("--iterations", type=int, default=5000)
    whole = sub.add_parser("requests")
    whole.add_argument("--key", required=True)
    whole.add_argument("--count", type=int, default=100)
    args = parser.parse_args()
    _setup()
    if args.command == "provision":
        print(json.dumps(provision(args.openai_url, args.anthropic_url)))
    elif args.command == "requests":
        print(json.dumps(requests_through_django(args.key, args.count)))
    else:
        print(json.dumps(costs(args.iterations)))


if __name__ == "__main__":
    main()
