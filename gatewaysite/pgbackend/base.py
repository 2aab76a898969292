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

from gatewaysite.pgbackend.cooperative import cooperate_with_gevent
from gatewaysite.pgbackend.pool import connection_check


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
        cooperate_with_gevent()
        _admit()
        try:
            connection = self._checked(conn_params)
        except BaseException:
            _record(ok=False)
            raise
        _record(ok=True)
        return connection

    def _checked(self, conn_params):
        """A connection known to work. A broken one from the pool is closed and given
        back, which makes the pool replace it, and the next is tried: what psycopg_pool's
        own `check` does, but mostly without a round trip (gatewaysite/pgbackend/pool.py).
        """
        tries = self.pool.max_size + 1 if self.pool is not None else 1
        for attempt in range(tries):
            connection = super().get_new_connection(conn_params)
            if self.pool is None:
                return connection  # just made, not lent
            try:
                connection_check(connection)
                return connection
            except psycopg.Error:
                connection.close()
                self.pool.putconn(connection)
                if attempt == tries - 1:
                    raise
        raise AssertionError("unreachable")
