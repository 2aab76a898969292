"""SQLite under gunicorn: WAL checkpoints in a background OS thread, not inside a request.

By default SQLite checkpoints the WAL on the commit that crosses 1,000 pages, so
every few hundred requests one request's log write took 5 ms or more while holding
the write lock, and the other workers' writers waited (in SQLite's busy handler,
which blocks a gevent worker whole). gunicorn workers turn the automatic checkpoint
off (settings: SQLITE_BACKGROUND_CHECKPOINT) and run a PASSIVE checkpoint every
second from a real thread, which never blocks writers. Short-lived commands
(`manage.py …`) keep SQLite's default.
"""

from __future__ import annotations

import logging
import sqlite3

logger = logging.getLogger(__name__)

INTERVAL_SECONDS = 1.0


def _run(path: str) -> None:
    from gevent import monkey

    sleep = monkey.get_original("time", "sleep")
    connection = sqlite3.connect(path, timeout=0, check_same_thread=False)
    while True:
        sleep(INTERVAL_SECONDS)
        try:
            connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        except sqlite3.Error as exc:  # busy or locked: the next round catches up
            logger.debug("background checkpoint skipped: %s", exc)


def start_background_checkpoints() -> None:
    """Start the checkpoint thread of this worker, if the database is SQLite."""
    from django.conf import settings
    from gevent import monkey

    database = settings.DATABASES["default"]
    if (
        database["ENGINE"] != "django.db.backends.sqlite3"
        or not settings.SQLITE_BACKGROUND_CHECKPOINT
    ):
        return
    # A real OS thread even under gevent's monkey patching.
    start_new_thread = monkey.get_original("_thread", "start_new_thread")
    start_new_thread(_run, (str(database["NAME"]),))
