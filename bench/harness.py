"""The benchmark's harness: the processes it starts and watches, and small helpers.

The fake provider (its own process, python -m testing.fake_provider), a fresh database
per pass (a new SQLite file, or DROP/CREATE of a PostgreSQL database), gunicorn as
gunicorn.conf.py configures it, and the sampler that reads their memory, CPU time,
sockets and database connections from /proc and pg_stat_activity while a case runs.
"""

from __future__ import annotations

import json
import os
import resource
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def say(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def raise_fd_limit() -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY:
        hard = 1 << 20
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # children inherit it
    return hard


def wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise SystemExit(f"bench: {what} did not happen within {timeout:.0f}s")


# --- processes -------------------------------------------------------------------------


def process_tree(pid: int) -> list[int]:
    """The pid and its children (gunicorn: master and workers)."""
    pids = [pid]
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            pids += [int(p) for p in f.read().split()]
    except OSError:
        pass
    return pids


def rss_bytes(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1]) * 1024
                        break
        except OSError:
            pass
    return total


def cpu_seconds(pids: list[int]) -> float:
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / ticks  # utime + stime
        except (OSError, IndexError, ValueError):
            pass
    return total


def server_pids(command: str = "postgres") -> list[int]:
    """Every process of a server by its command name (PostgreSQL's backends, its WAL
    writer, checkpointer and autovacuum): what the server spends, whoever it serves."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/comm") as f:
                    if f.read().strip() == command:
                        found.append(int(entry))
            except OSError:
                pass
    return found


def descriptors(pid: int, path: str) -> tuple[int, int]:
    """(descriptors open on `path`, sockets) of one process."""
    on_path = sockets = 0
    try:
        entries = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return 0, 0
    for fd in entries:
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target == path:
            on_path += 1
        elif target.startswith("socket:"):
            sockets += 1
    return on_path, sockets


class FakeProviderProcess:
    def __init__(self, processes: int, log_path: Path):
        self.port = free_port()
        self._log = open(log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [
                PYTHON,
                "-m",
                "testing.fake_provider",
                "--port",
                str(self.port),
                "--processes",
                str(processes),
            ],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
        )

        def started() -> bool:
            if self.proc.poll() is not None:
                raise SystemExit(f"bench: the fake provider exited; see {log_path}")
            return log_path.read_bytes().count(b"listening") >= processes

        try:
            wait_for(started, 15, f"the fake provider start (see {log_path})")
        except SystemExit:
            self.stop()
            raise
        self.base_url = f"http://127.0.0.1:{self.port}/v1"

    def pids(self) -> list[int]:
        return process_tree(self.proc.pid)

    def stop(self) -> None:
        children = self.pids()[1:]
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        # With --fake-processes the parent forwards the signal; make sure no child outlives it.
        deadline = time.monotonic() + 5
        for pid in children:
            while alive(pid) and time.monotonic() < deadline:
                time.sleep(0.05)
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
        self._log.close()


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@dataclass
class Database:
    name: str  # "sqlite" | "postgresql"
    env: dict[str, str]
    sqlite_path: str = ""
    pg_maintenance_url: str = ""
    pg_dbname: str = ""


def fresh_database(kind: str, args) -> Database:
    if kind == "sqlite":
        folder = Path(args.data_dir).resolve() / "sqlite"
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        path = folder / "gateway.sqlite3"
        env = {"DATA_DIR": str(folder), "DATABASE_URL": f"sqlite:///{path}"}
        return Database("sqlite", env, sqlite_path=str(path))
    import psycopg
    from psycopg import sql

    url = args.postgres_url
    base, _, dbname = url.rpartition("/")
    dbname = dbname.split("?", 1)[0]
    maintenance = f"{base}/postgres"
    with psycopg.connect(maintenance, autocommit=True, connect_timeout=5) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(dbname))
        )
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))
    folder = Path(args.data_dir).resolve() / "postgresql"
    folder.mkdir(parents=True, exist_ok=True)
    env = {"DATA_DIR": str(folder), "DATABASE_URL": url}
    return Database("postgresql", env, pg_maintenance_url=maintenance, pg_dbname=dbname)


def postgres_reachable(url: str) -> bool:
    import psycopg

    base = url.rpartition("/")[0]
    try:
        with psycopg.connect(f"{base}/postgres", connect_timeout=3):
            return True
    except psycopg.Error:
        return False


def base_env(db: Database) -> dict[str, str]:
    from cryptography.fernet import Fernet

    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST", "DJANGO_"))}
    env.update(db.env)
    env.update(
        DJANGO_SETTINGS_MODULE="gatewaysite.settings",
        ENCRYPTION_KEY=Fernet.generate_key().decode(),
        ADMIN_TOKEN=secrets.token_urlsafe(32),
        SECRET_KEY=secrets.token_urlsafe(50),
        DEBUG="false",
    )
    env.pop("ENCRYPTION_KEY_FILE", None)
    return env


def provisioned_database(kind: str, fake, args) -> tuple[Database, dict[str, str], dict]:
    """A fresh database of `kind`, migrated, with the bench's upstreams (at the fake
    provider) and keys made by bench/inproc.py: (database, environment, keys)."""
    db = fresh_database(kind, args)
    env = base_env(db)
    say(f"[{kind}] migrating a fresh database")
    subprocess.run(
        [PYTHON, "manage.py", "migrate", "--noinput", "-v", "0"],
        cwd=ROOT,
        env=env,
        check=True,
        timeout=300,
    )
    out = subprocess.run(
        [
            PYTHON,
            str(ROOT / "bench" / "inproc.py"),
            "provision",
            "--openai-url",
            fake.base_url,
            "--anthropic-url",
            fake.base_url,
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return db, env, json.loads(out.stdout.strip().splitlines()[-1])


class Gunicorn:
    def __init__(self, env: dict[str, str], args, log_path: Path):
        self.port = free_port()
        self.log_path = log_path
        self._log = open(log_path, "wb")  # noqa: SIM115 - closed in stop()
        cmd = [
            PYTHON,
            "-m",
            "gunicorn",
            "-c",
            str(ROOT / "gunicorn.conf.py"),
            "--bind",
            f"127.0.0.1:{self.port}",
        ]
        if args.workers:
            cmd += ["--workers", str(args.workers)]
        self.proc = subprocess.Popen(
            cmd, cwd=ROOT, env=env, stdout=self._log, stderr=subprocess.STDOUT
        )
        url = f"http://127.0.0.1:{self.port}/healthz"

        def up() -> bool:
            if self.proc.poll() is not None:
                raise SystemExit(f"bench: gunicorn exited; see {log_path}")
            try:
                with urllib.request.urlopen(url, timeout=1) as answer:  # noqa: S310 - loopback
                    return answer.status == 200
            except OSError:
                return False

        wait_for(up, 30, "gunicorn start")
        wait_for(lambda: len(self.pids()) > 1, 10, "gunicorn workers")

    def pids(self) -> list[int]:
        return process_tree(self.proc.pid)

    def describe(self) -> str:
        text = self.log_path.read_text(errors="replace")
        worker = "?"
        for line in text.splitlines():
            if "Using worker:" in line:
                worker = line.rsplit("Using worker:", 1)[1].strip()
        return f"{len(self.pids()) - 1} x {worker}"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(40)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()


class Sampler:
    """Polls peak RSS, database connections and sockets per worker while a case runs."""

    def __init__(self, pids_of, db: Database | None, interval: float = 0.1):
        self.pids_of = pids_of
        self.db = db
        self.interval = interval
        self.peak_rss = 0
        self.peak_db = 0
        self.peak_sockets: dict[int, int] = {}  # worker pid -> most sockets open at once
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._pg = None

    def __enter__(self) -> Sampler:
        if self.db is not None and self.db.name == "postgresql":
            import psycopg

            self._pg = psycopg.connect(
                self.db.pg_maintenance_url, autocommit=True, connect_timeout=5
            )
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(5)
        if self._pg is not None:
            self._pg.close()

    def _run(self) -> None:
        tick = 0
        while True:
            pids = self.pids_of()
            self.peak_rss = max(self.peak_rss, rss_bytes(pids))
            if self._pg is not None:
                row = self._pg.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = %s",
                    (self.db.pg_dbname,),
                ).fetchone()
                self.peak_db = max(self.peak_db, row[0])
            if tick % 5 == 0:  # descriptor scans cost more: twice a second
                on_db = 0
                for pid in pids[1:]:
                    on_path, sockets = descriptors(pid, self.db.sqlite_path if self.db else "")
                    on_db += on_path
                    self.peak_sockets[pid] = max(self.peak_sockets.get(pid, 0), sockets)
                if self.db is not None and self._pg is None:
                    self.peak_db = max(self.peak_db, on_db)
            tick += 1
            if self._stop.wait(self.interval):
                return
