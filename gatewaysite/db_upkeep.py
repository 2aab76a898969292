"""A gunicorn worker's background upkeep of its database, off every request's path.

SQLite: by default SQLite checkpoints the WAL on the commit that crosses 1,000 pages,
so every few hundred requests one request's log write took 5 ms or more while holding
the write lock, and the other workers' writers waited (in SQLite's busy handler, which
blocks a gevent worker whole). gunicorn workers turn the automatic checkpoint off
(settings: SQLITE_BACKGROUND_CHECKPOINT) and run a PASSIVE checkpoint every second
from a real OS thread, which never blocks writers. Short-lived commands
(`manage.py …`) keep SQLite's default.

PostgreSQL: the pool's connections are health-checked every few seconds here
(`ConnectionPool.check()`: a broken idle connection is replaced), rather than with a
round trip each time a request takes one, which cost two round trips per request.
"""

from __future__ import annotations

import logging
import sqlite3
import threading

logger = logging.getLogger(__name__)

CHECKPOINT_EVERY_SECONDS = 1.0
POOL_CHECK_EVERY_SECONDS = 5.0


def _checkpoint_forever(path: str) -> None:
    from gevent import monkey

    sleep = monkey.get_original("time", "sleep")
    connection = sqlite3.connect(path, timeout=0, check_same_thread=False)
    while True:
        sleep(CHECKPOINT_EVERY_SECONDS)
        try:
            connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        except sqlite3.Error as exc:  # busy or locked: the next round catches up
            logger.debug("background checkpoint skipped: %s", exc)


def _check_pool_forever() -> None:
    import time

    from django.db import connections

    while True:
        time.sleep(POOL_CHECK_EVERY_SECONDS)  # a greenlet's sleep under gevent
        try:
            pool = connections["default"].pool
            if pool is not None:
                pool.check()
        except Exception as exc:  # the database is away: requests answer 503 meanwhile
            logger.debug("pool check failed: %s", exc)


def start_db_upkeep() -> None:
    """Start this worker's upkeep for its database (called from gunicorn.conf.py)."""
    from django.conf import settings
    from gevent import monkey

    database = settings.DATABASES["default"]
    if database["ENGINE"] == "django.db.backends.sqlite3":
        if settings.SQLITE_BACKGROUND_CHECKPOINT:
            # A real OS thread even under gevent's monkey patching.
            start_new_thread = monkey.get_original("_thread", "start_new_thread")
            start_new_thread(_checkpoint_forever, (str(database["NAME"]),))
    elif database["ENGINE"] == "django.db.backends.postgresql":
        # Under gevent, threading is patched: this is a greenlet, like the requests.
        threading.Thread(target=_check_pool_forever, daemon=True, name="pool-check").start()
