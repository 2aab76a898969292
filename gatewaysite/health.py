"""Liveness and readiness: /healthz answers while the process serves, /readyz only
while the database answers too, and within READY_SECONDS either way."""

import contextlib

from django.db import DatabaseError, connection
from django.http import JsonResponse
from django.views.decorators.http import require_GET

# A probe's own timeout is often 2 s; the pool's (DB_POOL_TIMEOUT) is longer.
READY_SECONDS = 1.5


class _NotInTime(Exception):
    pass


@require_GET
def healthz(request):
    return JsonResponse({"status": "ok"})


@require_GET
def readyz(request):
    try:
        with _within(READY_SECONDS):
            with connection.cursor() as cursor:
                cursor.execute("SELECT 1")
                cursor.fetchone()
    except (DatabaseError, _NotInTime):
        # Drop the broken connection so the next probe tries afresh.
        connection.close_if_unusable_or_obsolete()
        return JsonResponse({"status": "unavailable", "database": "unreachable"}, status=503)
    return JsonResponse({"status": "ok", "database": "ok"})


def _within(seconds: float):
    # Under gevent (gunicorn's workers) the whole check, a pool wait included, is bounded.
    try:
        from gevent import Timeout, monkey
    except ImportError:
        return contextlib.nullcontext()
    if not monkey.is_module_patched("socket"):
        return contextlib.nullcontext()
    return Timeout(seconds, _NotInTime)
