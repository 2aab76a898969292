"""Django's PostgreSQL backend, failing fast while the database is away.

Without this, with PostgreSQL down every request (proxied, /readyz, admin pages) waited
the whole DB_POOL_TIMEOUT for a connection before its 503. After the first failure to
get a connection, a worker refuses at once for DB_RETRY_SECONDS, then lets one request
try again (the others still fail fast) until the database answers.
"""

from __future__ import annotations

import threading
import time

import psycopg
from django.conf import settings
from django.db.backends.postgresql import base


class _Breaker:
    lock = threading.Lock()
    failed_at: float | None = None
    probing = False


def database_known_down() -> bool:
    """Whether this process saw the database fail and has not seen it answer since."""
    return _Breaker.failed_at is not None


def _admit() -> None:
    with _Breaker.lock:
        if _Breaker.failed_at is None:
            return
        if _Breaker.probing or time.monotonic() - _Breaker.failed_at < settings.DB_RETRY_SECONDS:
            raise psycopg.OperationalError("the database is unavailable (failing fast)")
        _Breaker.probing = True


def _record(*, ok: bool) -> None:
    with _Breaker.lock:
        _Breaker.probing = False
        _Breaker.failed_at = None if ok else time.monotonic()


class DatabaseWrapper(base.DatabaseWrapper):
    def get_new_connection(self, conn_params):
        _admit()
        try:
            connection = super().get_new_connection(conn_params)
        except BaseException:
            _record(ok=False)
            raise
        _record(ok=True)
        return connection
