"""The connection pool's check of each connection it lends, without a round trip.

psycopg_pool's own check (`ConnectionPool.check_connection`, what Django installs with
CONN_HEALTH_CHECKS) sends an empty query to the server every time a connection is lent:
with three lends per proxied request (the proxy gives its connection back while a body
arrives and while the upstream answers), three of a JSON request's seven round trips
were these checks.

A connection that the server ended (a restart, pg_terminate_backend, an idle timeout,
PgBouncer going away) has something to read while it sits idle in the pool: the
server's FATAL message, or the end of the stream. Nothing else arrives on an idle
connection here (the gateway never LISTENs). So a connection that was given back less
than TRUSTED_IDLE_SECONDS ago and has nothing to read is lent without asking the
server; any other goes through psycopg's check. What this cannot see is a connection
cut silently (no FIN, a network partition) in the last TRUSTED_IDLE_SECONDS: the
request that gets it fails as one whose connection breaks mid-query would.
"""

from __future__ import annotations

import select
import time

from psycopg_pool import ConnectionPool

# A connection idle longer than this is checked with a round trip whatever the socket says.
TRUSTED_IDLE_SECONDS = 30.0

try:  # under gunicorn's gevent workers select.poll is gevent's; a zero-timeout poll
    # needs no hub, so the original is enough and cheaper
    from gevent.monkey import get_original

    _poll = get_original("select", "poll")
except ImportError:  # pragma: no cover - gevent is a dependency
    _poll = select.poll

_READABLE = select.POLLIN | select.POLLPRI | select.POLLERR | select.POLLHUP


def _has_input(fd: int) -> bool:
    poller = _poll()
    poller.register(fd, _READABLE)
    return bool(poller.poll(0))


def connection_returned(conn) -> None:
    """The pool's `reset` callback: note when the connection went back, idle."""
    conn._gateway_idle_since = time.monotonic()


def connection_check(conn) -> None:
    """The pool's `check` callback: raise if the connection is not fit to lend."""
    since = getattr(conn, "_gateway_idle_since", None)
    if (
        since is not None
        and time.monotonic() - since < TRUSTED_IDLE_SECONDS
        and not conn.closed
        and not _has_input(conn.fileno())
    ):
        return
    ConnectionPool.check_connection(conn)
