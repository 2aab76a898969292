"""Under gunicorn, SQLite's WAL is checkpointed by a background thread, not by requests.

The main database file changes only when a checkpoint copies the WAL into it, and the
workers' own connections never checkpoint (wal_autocheckpoint=0). So: after a few log
writes, the file changes within seconds with the background thread, and not without it.
"""

import hashlib
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests
from django.db import connection

from testing.helpers import ROOT


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def migrated(tmp_path_factory) -> Path:
    """A migrated SQLite file, made once for the module's tests (each copies it)."""
    if connection.vendor != "sqlite":
        pytest.skip("SQLite-only (runs in the SQLite half of the suite)")
    db = tmp_path_factory.mktemp("upkeep") / "migrated.sqlite3"
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v0"],
        cwd=ROOT,
        env={**os.environ, "DATABASE_URL": f"sqlite:///{db}"},
        check=True,
        timeout=120,
    )
    return db


def _main_file_changes(start_gateway, migrated: Path, *, background: bool) -> bool:
    db = migrated.with_name(f"checkpoint-{background}.sqlite3")
    shutil.copyfile(migrated, db)  # migrate has checkpointed: the file is the whole database
    url = f"sqlite:///{db}"
    before = _digest(db)
    gateway = start_gateway(
        workers=1,
        env={"DATABASE_URL": url, "SQLITE_BACKGROUND_CHECKPOINT": str(background).lower()},
    )
    try:
        for _ in range(30):  # each refused request still writes its log row
            r = requests.get(f"{gateway.url}/v1/models", timeout=5)
            assert r.status_code == 401
        deadline = time.monotonic() + 4
        while time.monotonic() < deadline:
            if _digest(db) != before:
                return True
            time.sleep(0.2)
        return False
    finally:
        gateway.stop()


def test_the_wal_is_checkpointed_in_the_background_and_only_there(start_gateway, migrated):
    assert _main_file_changes(start_gateway, migrated, background=True)
    assert not _main_file_changes(start_gateway, migrated, background=False)


def _backends(application_name: str) -> list[int]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid FROM pg_stat_activity WHERE application_name = %s", [application_name]
        )
        return [row[0] for row in cursor.fetchall()]


@pytest.mark.django_db(transaction=True)
def test_broken_pooled_connections_never_reach_a_request(start_gateway):
    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL-only (runs in the PostgreSQL half of the suite)")
    app_name = f"gw-upkeep-test-{os.getpid()}"
    gateway = start_gateway(workers=1, env={"PGAPPNAME": app_name})
    try:
        for _ in range(5):  # a few pooled connections
            assert requests.get(f"{gateway.url}/v1/models", timeout=5).status_code == 401
        old = _backends(app_name)
        assert old
        with connection.cursor() as cursor:  # as a database restart would
            cursor.execute("SELECT pg_terminate_backend(pid) FROM unnest(%s::int[]) AS pid", [old])
        statuses = [
            requests.get(f"{gateway.url}/v1/models", timeout=10).status_code for _ in range(10)
        ]
        assert statuses == [401] * 10  # answered from the database, never a 503
    finally:
        gateway.stop()


def test_under_steady_traffic_the_wal_is_emptied_once_past_its_limit(
    start_gateway, migrated, tmp_path
):
    """A PASSIVE checkpoint alone never restarts the WAL while some request is always
    reading (one minute of bench load left a 354 MB WAL beside a 13 MB database); past
    SQLITE_WAL_LIMIT_MB the background thread empties it, load or not. A WAL file only
    ever shrinks by that truncation, so seeing it shrink under load is the proof."""
    db = tmp_path / "wal-limit.sqlite3"
    shutil.copyfile(migrated, db)
    gateway = start_gateway(
        workers=2,
        env={
            "DATABASE_URL": f"sqlite:///{db}",
            "SQLITE_BACKGROUND_CHECKPOINT": "true",
            "SQLITE_WAL_LIMIT_MB": "1",
        },
    )
    wal = Path(f"{db}-wal")
    stop = threading.Event()

    def load() -> None:
        with requests.Session() as session:
            while not stop.is_set():  # each refused request still writes its log row
                assert session.get(f"{gateway.url}/v1/models", timeout=5).status_code == 401

    threads = [threading.Thread(target=load) for _ in range(4)]
    sizes: list[int] = []
    try:
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            time.sleep(0.1)
            sizes.append(wal.stat().st_size if wal.exists() else 0)
            grown = max(sizes) > 1024 * 1024
            if grown and sizes[-1] < max(sizes) and len(sizes) > 1 and sizes[-1] < sizes[-2]:
                break
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=10)
        gateway.stop()
    peak = max(sizes)
    assert peak > 1024 * 1024, f"the load never grew the WAL past its limit: {peak} bytes"
    shrank = any(later < earlier for earlier, later in zip(sizes, sizes[1:], strict=False))
    assert shrank, f"the WAL never shrank under load: {sizes[::10]}"
