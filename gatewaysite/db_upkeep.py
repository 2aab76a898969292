"""A gunicorn worker's background upkeep of its SQLite database, off every request's path.

SQLite: by default SQLite checkpoints the WAL on the commit that crosses 1,000 pages,
so every few hundred requests one request's log write took 5 ms or more while holding
the write lock, and the other workers' writers waited (in SQLite's busy handler, which
blocks a gevent worker whole). gunicorn workers turn the automatic checkpoint off
(settings: SQLITE_BACKGROUND_CHECKPOINT) and run a PASSIVE checkpoint every second
from a real OS thread, which never blocks writers. Short-lived commands
(`manage.py …`) keep SQLite's default.

A PASSIVE checkpoint copies pages into the database file but never restarts the WAL: the
file starts over only when a writer finds every frame copied and no reader on it, which
under steady traffic never happens (some request is always reading). Measured under
`make bench`'s JSON load on SQLite: a 13 MB database beside a 354 MB WAL after one
minute, 3.7 GB after section 5's few minutes, and growing for as long as the load lasts.
So when the WAL passes SQLITE_WAL_LIMIT_MB, the thread runs a TRUNCATE checkpoint: it
takes the write lock, waits up to TRUNCATE_WAIT_MS for the readers of the moment to
finish (a /v1 request's reads take microseconds), copies the rest and empties the file.
Writers wait meanwhile (the hot path's in a gevent sleep, see short_transaction); if
readers outlast the wait, it acts as a PASSIVE one and the next second tries again.

(PostgreSQL needs none: its pool checks each connection as it lends it, and WAL
checkpoints are the server's business.)
"""

from __future__ import annotations

import logging
import os
import sqlite3

logger = logging.getLogger(__name__)

CHECKPOINT_EVERY_SECONDS = 1.0
TRUNCATE_WAIT_MS = 200


def _wal_bytes(path: str) -> int:
    try:
        return os.path.getsize(f"{path}-wal")
    except OSError:
        return 0


def _checkpoint_forever(path: str, wal_limit_bytes: int) -> None:
    from gevent import monkey

    sleep = monkey.get_original("time", "sleep")
    connection = sqlite3.connect(path, timeout=0, check_same_thread=False)
    while True:
        sleep(CHECKPOINT_EVERY_SECONDS)
        try:
            connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
            if _wal_bytes(path) > wal_limit_bytes:
                connection.execute(f"PRAGMA busy_timeout = {TRUNCATE_WAIT_MS}")
                try:
                    connection.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
                finally:
                    connection.execute("PRAGMA busy_timeout = 0")
        except sqlite3.Error as exc:  # busy or locked: the next round catches up
            logger.debug("background checkpoint skipped: %s", exc)


def start_db_upkeep() -> None:
    """Start this worker's upkeep for its database (called from gunicorn.conf.py)."""
    from django.conf import settings
    from gevent import monkey

    database = settings.DATABASES["default"]
    if database["ENGINE"] == "django.db.backends.sqlite3":
        if settings.SQLITE_BACKGROUND_CHECKPOINT:
            # A real OS thread even under gevent's monkey patching.
            start_new_thread = monkey.get_original("_thread", "start_new_thread")
            start_new_thread(
                _checkpoint_forever,
                (str(database["NAME"]), settings.SQLITE_WAL_LIMIT_MB * 1024 * 1024),
            )
