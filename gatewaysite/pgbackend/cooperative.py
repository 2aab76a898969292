"""psycopg's waits for the server, cooperative under gevent.

psycopg chooses how it waits for PostgreSQL once, when it is first imported: a poll()
in C, unless gevent has already patched `select`. gunicorn's master imports the
settings, and psycopg with them, before it forks; a gevent worker patches `select` only
after the fork. So every worker waited for every round trip in C, and while one request
waited on the server (a row lock in limits_admit, a slow statement) every other request
of that worker stood still: with 64 clients on two workers, each worker's round trips
ran one at a time.

`cooperate_with_gevent()` switches psycopg to its poll()-based wait, which looks up
`select.poll` at each call and so gets gevent's once `select` is patched, and gives its
connect wait gevent's selector (psycopg kept the one it imported). The backend calls it
before lending each connection; after the switch it costs one comparison.
"""

from __future__ import annotations

import selectors
import sys

from psycopg import waiting


def cooperate_with_gevent() -> bool:
    """Make psycopg's waits yield to gevent's hub if gevent patched `select`; whether
    they do now."""
    if waiting.wait is waiting.wait_poll:
        return True
    monkey = sys.modules.get("gevent.monkey")
    if monkey is None or not monkey.is_module_patched("select"):
        return False
    waiting.DefaultSelector = selectors.DefaultSelector
    waiting.wait = waiting.wait_poll
    return True
