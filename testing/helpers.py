"""Helpers the tests import (the root conftest's fixtures use them too).

Test modules import from here, never from a conftest: a conftest is pytest's to load.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(predicate, *, timeout: float = 10.0, interval: float = 0.02, message: str = ""):
    """Poll until predicate() is truthy; return its value or fail the test at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(message or f"condition not met within {timeout}s")
        time.sleep(interval)


def redis_test_url() -> str:
    """The test Redis (TEST_REDIS_URL; scripts/test.sh gives each helper its own db)."""
    return os.environ.get("TEST_REDIS_URL") or "redis://127.0.0.1:6379/15"


def manage_py(*args: str, env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess:
    """Run `manage.py <args>` as an operator would, capturing its output and exit code."""
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


# --- which worker answered: gunicorn's access log with the worker's pid ----------------

# extra_args for start_gateway / start_two_instances, so pids_serving can read the log.
ACCESS_LOG_WITH_PID = ["--access-logformat", 'pid=%(p)s "%(m)s %(U)s" %(s)s']


def pids_serving(
    gateway, since: int, status: int, request: str = "POST /v1/chat/completions"
) -> set[str]:
    """The pids of the workers that answered `request` with `status` after output offset `since`."""
    lines = gateway.output()[since:]
    return set(re.findall(rf'pid=<?(\d+)>? "{re.escape(request)}" {status}', lines))


def until_every_worker_served(gateway, workers: int, send, *, status: int = 200, timeout=30.0):
    """Call send() (one request to `gateway`, on a new connection, asserting its answer)
    until each of the gateway's `workers` has answered one with `status`.

    The kernel hands new connections to whichever worker accepts first, so a few calls
    may all land on one worker: keep sending until the access log shows every pid.
    """
    mark = len(gateway.output())

    def all_served() -> bool:
        if len(pids_serving(gateway, mark, status)) >= workers:
            return True
        for _ in range(10):
            send()
        return False

    wait_until(all_served, timeout=timeout, interval=0, message=f"not all {workers} workers served")


# --- canaries: secrets that must never show up anywhere ----------------------------

CANARIES: set[str] = set()


def remember_secret(value: str) -> str:
    """Register a secret (upstream api_key, plaintext gateway key) for the final canary sweep."""
    CANARIES.add(value)
    return value


# --- the log row of one proxied answer ---------------------------------------------


def finished_row(request_id: str | None = None, *, timeout: float = 10.0):
    """The log row of one answer once it is finished (the only row when no id is given)."""
    from logs.models import RequestLog

    def find():
        rows = RequestLog.objects.all()
        if request_id is not None:
            rows = rows.filter(request_id=request_id)
        rows = list(rows)
        if request_id is None and len(rows) > 1:
            pytest.fail(f"expected one log row, found {len(rows)}")
        if rows and rows[0].state == RequestLog.State.FINISHED:
            return rows[0]
        return None

    return wait_until(find, timeout=timeout, message="the log row was not finished in time")


# --- request log rows written directly (no proxy, no services) ---------------------


def log_row_create(at=None, *, status=200, key=None, upstream=None, model="", prompt=None,
                   completion=None, total=None, cost=None, **fields):  # fmt: skip
    """A finished RequestLog row dated `at` (default now): the apps' `make_log_row` fixtures.

    cost is the cost in USD (a str or Decimal); other fields are RequestLog's own.
    """
    from decimal import Decimal

    from logs.models import RequestLog

    return RequestLog.objects.create(
        method="POST",
        path="/v1/chat/completions",
        status_code=status,
        api_key=key,
        upstream=upstream,
        model=model,
        prompt_tokens=prompt,
        completion_tokens=completion,
        total_tokens=total,
        cost_usd=None if cost is None else Decimal(cost),
        created_at=at or dt.datetime.now(dt.UTC),
        state=RequestLog.State.FINISHED,
        **fields,
    )


# --- PostgreSQL-only tests: the server the test database lives on -------------------

# scripts/test.sh's default, when TEST_POSTGRES_URL is not set
DEFAULT_TEST_POSTGRES_URL = "postgres://postgres@127.0.0.1:5432/gateway"


def postgres_server() -> dict[str, object]:
    """Host, port, user and password of TEST_POSTGRES_URL's server (the SQLite run uses it too)."""
    from urllib.parse import urlsplit

    url = urlsplit(os.environ.get("TEST_POSTGRES_URL") or DEFAULT_TEST_POSTGRES_URL)
    return {
        "host": url.hostname or "127.0.0.1",
        "port": url.port or 5432,
        "user": url.username or "postgres",
        "password": url.password or "",
    }


def postgres_url(name: str, *, port: int | None = None) -> str:
    """A URL for database `name` on the test server (through `port`, e.g. a relay, if given)."""
    server = postgres_server()
    password = f":{server['password']}" if server["password"] else ""
    host = "127.0.0.1" if port is not None else server["host"]
    return f"postgres://{server['user']}{password}@{host}:{port or server['port']}/{name}"


def postgres_database_create(name: str) -> str:
    """A fresh, migrated PostgreSQL database on the test server; returns its URL."""
    import psycopg

    with psycopg.connect(postgres_url("postgres"), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    url = postgres_url(name)
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v0"],
        cwd=ROOT,
        env={**os.environ, "DATABASE_URL": url},
        check=True,
        timeout=120,
    )
    return url


def postgres_database_drop(name: str) -> None:
    import psycopg

    with psycopg.connect(postgres_url("postgres"), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
