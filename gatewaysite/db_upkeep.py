"""A gunicorn worker's background upkeep of its SQLite database, off every request's path.

SQLite: by default SQLite checkpoints the WAL on the commit that crosses 1,000 pages,
so every few hundred requests one request's log write took 5 ms or more while holding
the write lock, and the other workers' writers waited (in SQLite's busy handler, which
blocks a gevent worker whole). gunicorn workers turn the automatic checkpoint off
(settings: SQLITE_BACKGROUND_CHECKPOINT) and run a PASSIVE checkpoint every second
from a real OS thread, which never blocks writers. Short-lived commands
(`manage.py …`) keep SQLite's default.

(PostgreSQL needs none: its pool checks each connection as it lends it, and WAL
checkpoints are the server's business.)
"""

from __future__ import annotations

import logging
import sqlite3

logger = logging.getLogger(__name__)

CHECKPOINT_EVERY_SECONDS = 1.0


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
