"""Liveness and readiness: /healthz answers while the process serves; /readyz answers
200 only while the database answers too, within READY_SECONDS either way, and reports
each store it checked (the database, and Redis when REDIS_URL holds the limit counters)
with its latency."""

import contextlib
import time

from django.db import DatabaseError, connection
from django.http import JsonResponse
from django.views.decorators.http import require_GET

from limits.counters import counters_store_ping

# A probe's own timeout is often 2 s; the pool's (DB_POOL_TIMEOUT) is longer.
READY_SECONDS = 1.5


class _NotInTime(Exception):
    pass


@require_GET
def healthz(request):
    return JsonResponse({"status": "ok"})


@require_GET
def readyz(request):
    started = time.monotonic()
    try:
        with _within(READY_SECONDS):
            with connection.cursor() as cursor:
                cursor.execute("SELECT 1")
                cursor.fetchone()
    except (DatabaseError, _NotInTime):
        # Drop the broken connection so the next probe tries afresh.
        connection.close_if_unusable_or_obsolete()
        return JsonResponse({"status": "unavailable", "database": "unreachable"}, status=503)
    body = {"status": "ok", "database": "ok", "database_ms": _ms_since(started)}
    # Redis away stops only keys with limits (fail closed), not the instance: still 200,
    # saying "degraded" so a probe or an operator can tell.
    started = time.monotonic()
    try:
        with _within(READY_SECONDS):
            counters = counters_store_ping()
    except _NotInTime:
        counters = False
    if counters is not None:
        body["counters"] = "ok" if counters else "unreachable"
        body["counters_ms"] = _ms_since(started)
        if not counters:
            body["status"] = "degraded"
    return JsonResponse(body)


def _ms_since(started: float) -> float:
    return round((time.monotonic() - started) * 1000, 2)


def _within(seconds: float):
    # Under gevent (gunicorn's workers) the whole check, a pool wait included, is bounded.
    try:
        from gevent import Timeout, monkey
    except ImportError:
        return contextlib.nullcontext()
    if not monkey.is_module_patched("socket"):
        return contextlib.nullcontext()
    return Timeout(seconds, _NotInTime)
