"""The gateway behind PgBouncer in transaction pooling (Debian's pgbouncer, started here):
how large deployments bound PostgreSQL's connections. Proxied requests, their rows, a
revocation and a rate limit all behave as they do on a direct connection."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from django.db import connection

from keys.services import key_revoke
from limits.services import limits_set
from testing.helpers import free_port, wait_until

CHAT = {"model": "gpt-test", "messages": [{"role": "user", "content": "hi"}]}
POOL_SIZE = 3


@pytest.fixture
def pgbouncer(transactional_db):
    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL-only (runs in the PostgreSQL half of the suite)")
    binary = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"
    if not os.path.exists(binary):
        pytest.skip("pgbouncer is not installed (apt install pgbouncer)")
    db = connection.settings_dict
    user = db.get("USER") or "postgres"
    # pgbouncer refuses to run as root and drops to `user` (-u): its files must be its own.
    folder = Path(tempfile.mkdtemp(prefix="gw-pgbouncer-"))
    folder.chmod(0o777)
    port = free_port()
    (folder / "users.txt").write_text(f'"{user}" ""\n')
    (folder / "pgbouncer.ini").write_text(
        f"""[databases]
{db["NAME"]} = host={db.get("HOST") or "127.0.0.1"} port={db.get("PORT") or 5432} dbname={db["NAME"]}
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {port}
unix_socket_dir =
auth_type = trust
auth_file = {folder / "users.txt"}
pool_mode = transaction
default_pool_size = {POOL_SIZE}
max_client_conn = 500
logfile = {folder / "pgbouncer.log"}
"""
    )
    for path in folder.iterdir():
        path.chmod(0o666)
    args = [binary, str(folder / "pgbouncer.ini")]
    if os.geteuid() == 0:
        args[1:1] = ["-u", "postgres"]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        wait_until(lambda: _answers(port), timeout=10, message="pgbouncer did not start")
        yield f"postgres://{user}@127.0.0.1:{port}/{db['NAME']}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        shutil.rmtree(folder, ignore_errors=True)


def _answers(port: int) -> bool:
    import socket

    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_the_gateway_works_behind_pgbouncer_in_transaction_pooling(
    pgbouncer,
    start_gateway,
    make_route,
):
    from logs.models import RequestLog

    bounced = start_gateway(workers=2, env={"DATABASE_URL": pgbouncer, "DB_PGBOUNCER": "true"})
    route = make_route(gateway_url=bounced.url, provider="openai", timeout=10)
    limited = make_route(gateway_url=bounced.url, provider="openai", timeout=10)
    limits_set(key=limited.key, rpm_limit=10)

    def post(raw_key: str) -> int:
        return requests.post(
            f"{bounced.url}/v1/chat/completions",
            json=CHAT,
            headers={"Authorization": f"Bearer {raw_key}"},
            timeout=30,
        ).status_code

    # More requests at once than PgBouncer has server connections, and each query
    # repeated far past psycopg's prepare threshold (5).
    with ThreadPoolExecutor(max_workers=20) as pool:
        statuses = Counter(pool.map(lambda _: post(route.raw_key), range(120)))
    assert statuses == {200: 120}
    wait_until(
        lambda: (
            RequestLog.objects.filter(
                api_key_id=route.key.pk, state=RequestLog.State.FINISHED, status_code=200
            ).count()
            == 120
        ),
        timeout=30,
        message="not every request has its finished row",
    )

    with ThreadPoolExecutor(max_workers=20) as pool:
        limited_statuses = Counter(pool.map(lambda _: post(limited.raw_key), range(30)))
    assert limited_statuses == {200: 10, 429: 20}

    key_revoke(actor="tests", key=route.key)
    assert post(route.raw_key) == 401
