"""Fixtures shared by every app's tests: factories and a real gunicorn on a loopback port.

Tests that talk to the live gateway must use the ``transactional_db`` fixture (or
``@pytest.mark.django_db(transaction=True)``) so what they write is committed and
visible to the gunicorn processes, which share the test database.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from testing.helpers import ROOT, free_port, remember_secret, wait_until

# The live-gateway fixtures (fake provider, routes, SDK clients) every app's tests share,
# what lets the suite run on several cores (the run folder, the `last` tests' order), and
# which tests the PostgreSQL half runs (`--database-tests-only`), and how the tables are
# emptied after a test that commits (`testing/flush.py`).
pytest_plugins = ["testing.live", "testing.parallel", "testing.halves", "testing.flush"]


def _database_url_for_subprocess() -> str:
    from django.db import connection

    settings = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{settings['NAME']}"
    user = settings.get("USER") or "postgres"
    password = f":{settings['PASSWORD']}" if settings.get("PASSWORD") else ""
    host = settings.get("HOST") or "127.0.0.1"
    port = settings.get("PORT") or 5432
    return f"postgres://{user}{password}@{host}:{port}/{settings['NAME']}"


class GatewayProcess:
    """A gunicorn serving the gateway against the test database. Output goes to a file."""

    SETTLE_SECONDS = 2.0

    def __init__(self, *, env: dict[str, str], workers: int, log_path: Path, extra_args=()):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self._log = open(log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "-c",
                str(ROOT / "gunicorn.conf.py"),
                "--bind",
                f"127.0.0.1:{self.port}",
                "--workers",
                str(workers),
                *extra_args,
            ],
            cwd=ROOT,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        self.wait_ready()

    def wait_ready(self, timeout: float = 20.0) -> None:
        def up():
            if self.proc.poll() is not None:
                pytest.fail(f"gunicorn exited ({self.proc.returncode}); see {self.log_path}")
            try:
                return requests.get(self.url + "/healthz", timeout=1).status_code == 200
            except requests.RequestException:
                return False

        wait_until(up, timeout=timeout, interval=0.05, message="gunicorn did not start")

    def output(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")

    def signal(self, sig: int) -> None:
        self.proc.send_signal(sig)

    def worker_pids(self) -> list[int]:
        """The pids of the master's children (its workers), read from /proc."""
        pids = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            # the command may contain spaces; the fields after the last ")" are fixed
            if int(stat.rsplit(")", 1)[1].split()[1]) == self.proc.pid:
                pids.append(int(entry.name))
        return pids

    def stop(self, *, grace: float = 15, quick: bool = False) -> None:
        """Graceful (SIGTERM) first: what is in flight finishes. A test stops its gunicorn
        once its requests are answered, so after SETTLE_SECONDS what is left is only the idle
        keep-alive connections of responses the test still holds, which a graceful
        shutdown would wait for (up to GUNICORN_KEEPALIVE, 5 s): then it is made quick
        (SIGQUIT). quick=True starts quick, and also skips the workers' connection pools,
        which retry for up to 5 s while the database is unreachable."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGQUIT if quick else signal.SIGTERM)
            try:
                self.proc.wait(timeout=self.SETTLE_SECONDS)
            except subprocess.TimeoutExpired:
                self.proc.send_signal(signal.SIGQUIT)
            try:
                self.proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()


@pytest.fixture(scope="session")
def gateway_env(django_db_setup, django_db_blocker) -> dict[str, str]:
    """The environment a gunicorn needs to serve the test database with our settings."""
    from django.conf import settings

    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    env.update(
        DATABASE_URL=_database_url_for_subprocess(),
        ENCRYPTION_KEY=settings.ENCRYPTION_KEY,
        ADMIN_TOKEN=settings.ADMIN_TOKEN,
        SECRET_KEY=settings.SECRET_KEY,
        DJANGO_SETTINGS_MODULE="gatewaysite.settings",
        GUNICORN_ACCESS_LOG="-",
    )
    env.pop("ENCRYPTION_KEY_FILE", None)
    return env


@pytest.fixture(scope="session")
def collected_static(gateway_env, pytestconfig) -> Path:
    """STATIC_ROOT after `collectstatic`, as the setup command leaves it (WhiteNoise serves
    only collected files), for every gunicorn that serves the admin's or /docs' static
    files: made once per run (3 s of two cores) in the run folder, by the first test
    process that needs it, while the others wait on its lock and then use it."""
    from gatewaysite.tests.browser import collect_static
    from testing.parallel import run_dir

    static_root = run_dir(pytestconfig) / "static"
    with open(run_dir(pytestconfig) / "static.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        # collectstatic writes its manifest last: without it, the folder is unfinished
        if not (static_root / "staticfiles.json").is_file():
            collect_static(static_root, gateway_env)
    assert (static_root / "staticfiles.json").is_file()
    return static_root


@pytest.fixture(scope="session")
def server_logs_dir(pytestconfig) -> Path:
    """Every live gunicorn's output, from every worker, lands here (the canary sweep reads it)."""
    from testing.parallel import run_dir

    folder = run_dir(pytestconfig) / "server-logs"
    folder.mkdir(exist_ok=True)
    return folder


@pytest.fixture(scope="session")
def start_gateway(gateway_env, server_logs_dir):
    """Factory: start_gateway(workers=3, env={...}) -> GatewayProcess, stopped at session end."""
    from testing.parallel import worker_id

    started: list[GatewayProcess] = []

    def start(*, workers: int = 2, env: dict[str, str] | None = None, extra_args=()):
        proc = GatewayProcess(
            env={**gateway_env, **(env or {})},
            workers=workers,
            log_path=server_logs_dir / f"gunicorn-{worker_id()}-{len(started)}.log",
            extra_args=extra_args,
        )
        started.append(proc)
        return proc

    yield start
    # All at once, and quick (SIGQUIT): every test is done, and a graceful shutdown waits a
    # second for each worker to notice, then for every idle keep-alive connection (up to
    # GUNICORN_KEEPALIVE, 5 s), which added 1.5-6.5 s to the end of each test process.
    # The workers are killed outright once their master is told to quit (so it starts
    # none in their place): a worker that exits tears down Django, 0.3-0.4 s of CPU each,
    # and the dozen gunicorns of a test process quitting at once kept its teardown busy
    # 5-8 s (measured 2026-12-01), at the very end of the run for the canary's process.
    # Every line they wrote is in their log already (each log record is flushed).
    for proc in started:
        if proc.proc.poll() is None:
            workers = proc.worker_pids()
            proc.signal(signal.SIGQUIT)
            for pid in workers:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
    for proc in started:
        proc.stop(grace=3, quick=True)


@pytest.fixture(scope="session")
def start_two_instances(start_gateway):
    """Factory: start_two_instances(env={...}) -> [a, b], scale-out on one machine: two
    gunicorns of two workers each on the one test database (and one Redis, when env sets
    REDIS_URL). The tests of what stays exact across instances use it."""

    def start(*, env: dict[str, str] | None = None, extra_args=()):
        return [start_gateway(workers=2, env=env, extra_args=extra_args) for _ in range(2)]

    return start


@pytest.fixture(scope="session")
def live_gateway(start_gateway) -> GatewayProcess:
    """One gunicorn (2 gevent workers) shared by the session's integration tests."""
    return start_gateway(workers=2)


@pytest.fixture
def admin_token(settings) -> str:
    return settings.ADMIN_TOKEN


@pytest.fixture
def api(admin_token):
    """An admin API client that carries the admin token."""
    from gatewaysite.tests.admin_api import admin_client

    return admin_client(admin_token)


@pytest.fixture(autouse=True)
def cheap_password_hashing(request, settings):
    """Users created in-process get a cheap PBKDF2 hash (testing/hashers.py says why)."""
    if request.node.get_closest_marker("full_cost_passwords") is None:
        settings.PASSWORD_HASHERS = [
            "testing.hashers.CheapPBKDF2PasswordHasher",
            *settings.PASSWORD_HASHERS[1:],
        ]


@pytest.fixture(autouse=True)
def plain_static_storage(settings):
    """Render admin pages without a collected manifest (the browser tests use the real one)."""
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }


# --- factories --------------------------------------------------------------------


@pytest.fixture
def make_upstream(db):
    from upstreams.services import upstream_create

    counter = {"n": 0}

    def make(**fields):
        counter["n"] += 1
        defaults = {
            "name": f"upstream-{counter['n']}",
            "provider": "openai",
            "base_url": "http://127.0.0.1:9/v1",
            "api_key": f"sk-upstream-secret-{counter['n']:04d}-{os.urandom(6).hex()}",
        }
        fields = {**defaults, **fields}
        remember_secret(fields["api_key"])
        return upstream_create(actor="tests", **fields)

    return make


@pytest.fixture
def make_key(db, make_upstream):
    """make_key(upstreams=[...], **fields) -> (APIKey, plaintext)."""
    from django.utils import timezone

    from keys.models import APIKey, KeyringVersion
    from keys.services import key_create

    def make(*, upstreams=None, name="test key", expires_at=None, **fields):
        upstreams = upstreams if upstreams is not None else [make_upstream()]
        past = expires_at is not None and expires_at <= timezone.now()
        key, raw = key_create(
            actor="tests",
            name=name,
            upstream_ids=[u.pk for u in upstreams],
            expires_at=None if past else expires_at,
            **fields,
        )
        if past:  # no surface may set a past expiry; an already expired key is made by hand
            APIKey.objects.filter(pk=key.pk).update(expires_at=expires_at)
            KeyringVersion.bump()
            key.refresh_from_db()
        remember_secret(raw)
        return key, raw

    return make
