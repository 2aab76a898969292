"""The gateway's Prometheus metrics: the one module that imports prometheus_client.

Under gunicorn every worker writes its samples to files in PROMETHEUS_MULTIPROC_DIR
(gunicorn.conf.py makes a fresh folder per instance before any worker starts), and
`GET /metrics` sums them, so a scrape sees the whole instance whichever worker answers.
Outside gunicorn (manage.py, in-process tests) the samples stay in the process.

Labels are bounded by what operators configure: `upstream` is an upstream's name
(`none` before one is chosen), `code` one of the gateway's own error codes, `reason`
one of a few failure kinds. Never a key, a secret, or a model name a client chose.
"""

from __future__ import annotations

import hmac
import logging
import os
from decimal import Decimal

from django.conf import settings
from django.db import DatabaseError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.http import require_GET
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily

logger = logging.getLogger(__name__)

NO_UPSTREAM = "none"
# Seconds: a JSON answer takes milliseconds, a stream up to PROXY_MAX_STREAM_SECONDS.
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)
TTFB_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)

REQUESTS = Counter(
    "gateway_requests",
    "Proxied requests, by upstream, dialect and the status class of their answer "
    "(none: no answer came)",
    ["upstream", "dialect", "status_class"],
)
DURATION = Histogram(
    "gateway_request_duration_seconds",
    "Time from a request's arrival to the end of its answer",
    ["upstream"],
    buckets=DURATION_BUCKETS,
)
TTFB = Histogram(
    "gateway_time_to_first_byte_seconds",
    "Time from a request's arrival to the first byte of the upstream's answer",
    ["upstream"],
    buckets=TTFB_BUCKETS,
)
TOKENS = Counter(
    "gateway_tokens",
    "Tokens recorded in finished requests' log rows (unknown counts add nothing)",
    ["upstream", "kind"],
)
COST = Counter(
    "gateway_cost_usd",
    "Cost in USD recorded in finished requests' log rows (unknown costs add nothing)",
    ["upstream"],
)
IN_FLIGHT = Gauge(
    "gateway_requests_in_flight",
    "Proxied requests being served now (a stream counts until it ends)",
    multiprocess_mode="livesum",
)
ATTEMPT_FAILURES = Counter(
    "gateway_upstream_attempt_failures",
    "Attempts at an upstream that failed, by reason (connect, timeout, status_5xx, status_429, ...)",
    ["upstream", "reason"],
)
COOLING = Gauge(
    "gateway_upstream_cooling",
    "1 while an upstream is cooling after repeated failures, else 0",
    ["upstream"],
    multiprocess_mode="mostrecent",
)
REFUSALS = Counter(
    "gateway_refusals",
    "Answers of the gateway's own instead of an upstream's, by their error code",
    ["code"],
)


class KeysNearBudget:
    """`gateway_keys_near_budget`: read from the database at scrape time, not counted per worker.

    A count without a key label, so it stays within the label rules; the dashboard names the
    keys. Every instance reads the same database, so the value is the same on each of them.
    """

    def collect(self):
        from django.utils import timezone

        from gatewaysite.dashboard import NEAR_BUDGET, keys_near_budget

        try:
            count = len(keys_near_budget(timezone.now()))
        except DatabaseError:
            logger.warning(
                "metrics: gateway_keys_near_budget left out: the database did not answer"
            )
            return
        yield GaugeMetricFamily(
            "gateway_keys_near_budget",
            f"Usable keys with at least {NEAR_BUDGET:.0%} of their budget window spent or reserved",
            value=count,
        )


# Collectors that read shared state when scraped (auto_describe off: registering runs no query).
AT_SCRAPE = CollectorRegistry()
AT_SCRAPE.register(KeysNearBudget())


def request_started() -> None:
    """A proxied request arrived; `request_finished` must follow exactly once."""
    IN_FLIGHT.inc()


def request_finished(
    *,
    upstream: str | None,
    dialect: str,
    status: int,
    duration_seconds: float | None,
    ttfb_seconds: float | None = None,
    prompt_tokens: int | None = None,
    completion_tokens: int | None = None,
    cache_read_tokens: int | None = None,
    cache_write_tokens: int | None = None,
    cost_usd: Decimal | None = None,
) -> None:
    """Count a request as its log row is finished, with what the row records."""
    name = upstream or NO_UPSTREAM
    IN_FLIGHT.dec()
    REQUESTS.labels(name, dialect, status_class(status)).inc()
    if duration_seconds is not None:
        DURATION.labels(name).observe(duration_seconds)
    if ttfb_seconds is not None:
        TTFB.labels(name).observe(ttfb_seconds)
    for kind, count in (
        ("prompt", prompt_tokens),
        ("completion", completion_tokens),
        ("cache_read", cache_read_tokens),
        ("cache_write", cache_write_tokens),
    ):
        if count:
            TOKENS.labels(name, kind).inc(count)
    if cost_usd:
        COST.labels(name).inc(float(cost_usd))


def request_refused(*, code: str) -> None:
    """The gateway answered a request itself, with this error code."""
    REFUSALS.labels(code).inc()


def attempt_failed(*, upstream: str, reason: str) -> None:
    """An attempt at this upstream failed (routing calls it once per failed attempt)."""
    ATTEMPT_FAILURES.labels(upstream, reason).inc()


def upstream_cooling_set(*, upstream: str, cooling: bool) -> None:
    """Say whether an upstream is cooling now (routing calls it when the state changes)."""
    COOLING.labels(upstream).set(1 if cooling else 0)


def status_class(status: int) -> str:
    """`2xx` … `5xx`; `none` for status 0 (no answer came)."""
    return f"{status // 100}xx" if 100 <= status <= 599 else "none"


def exposition() -> bytes:
    """The instance's metrics in Prometheus text format: every worker's, summed."""
    # prometheus_client itself chose its mode from this variable when it was imported,
    # so this reads the same place rather than a setting that could disagree with it.
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry) + generate_latest(AT_SCRAPE)
    return generate_latest(REGISTRY) + generate_latest(AT_SCRAPE)


@require_GET
def metrics_view(request: HttpRequest) -> HttpResponse:
    """GET /metrics, behind `Authorization: Bearer <METRICS_TOKEN>`; a 404 while it is unset."""
    token = settings.METRICS_TOKEN
    if not token:
        raise Http404("Metrics are off: METRICS_TOKEN is not set")
    presented = request.headers.get("Authorization", "")
    if not hmac.compare_digest(presented.encode(), f"Bearer {token}".encode()):
        return JsonResponse(
            {"error": "forbidden", "message": "Metrics access requires the METRICS_TOKEN bearer"},
            status=403,
        )
    return HttpResponse(exposition(), content_type=CONTENT_TYPE_LATEST)


def on_attempt_failed(*, upstream: str, reason: str, **_signal) -> None:
    """Receiver of upstreams.health.attempt_failed."""
    attempt_failed(upstream=upstream, reason=reason)


def on_cooling_changed(*, upstream: str, cooling: bool, **_signal) -> None:
    """Receiver of upstreams.health.cooling_changed."""
    upstream_cooling_set(upstream=upstream, cooling=cooling)
