"""The benchmark: what the gateway adds to every call, beside a direct call in the same run.

    make bench                                    # the full run, SQLite then PostgreSQL (~4 min)
    .venv/bin/python bench/run.py --quick         # a smoke run (~2 min)
    .venv/bin/python bench/run.py --databases sqlite --sections 1,2
    .venv/bin/python bench/run.py --direct-only --quick   # only the harness and the fake provider

It starts the fake provider (bench/fake_provider.py) as its own process, so it never
shares a GIL with the load generator (this process, asyncio raw sockets with keep-alive,
bench/loadgen.py). For each database it makes a fresh one (SQLite: a new file under
--data-dir; PostgreSQL: DROP/CREATE DATABASE of --postgres-url's database), migrates,
creates two upstreams pointing at the fake provider and one key each through the
services (bench/inproc.py), starts gunicorn exactly as gunicorn.conf.py configures it
(GUNICORN_* variables from the environment apply; --workers overrides), and measures:

  1. sequential latency: interleaved rounds (direct, gateway, direct, gateway, ...) on
     one keep-alive connection each; OpenAI chat and Anthropic messages, JSON.
     p50/p99 and the overhead (gateway minus direct, same pass).
  2. throughput at concurrency 16 and 64, JSON and streaming (chat, stream_options
     include_usage): requests/s, latency p50/p99, time to first byte for streams, and
     the gateway's CPU time per request (gunicorn master + workers, from /proc).
  3. --streams (1,000) slow streams open at once (20 chunks x 250 ms, natural length 5 s,
     started evenly over --ramp seconds, 1 by default, so all are open together after it;
     --ramp 2,1 runs both): errors, how many finished on time (within 1.2 x 5 s), time
     to first byte, stretch beyond 5 s, peak RSS of gunicorn (master +
     workers, summed), peak database connections (PostgreSQL: pg_stat_activity for the
     bench database; SQLite: open descriptors on the database file).
  4. the per-request cost of the key check (warm cache), the upstream choice, routing by
     model (allowlist, five upstreams, priority, weight, cooling), the log writes
     (log_open + log_finish), timed in-process, --iterations (5,000) each.
  5. features: the OpenAI chat call of 1 and 2 with three keys (no limits; rpm, tpm and
     max_parallel set; those and both budgets, USD and tokens), sequential (interleaved
     rounds direct / each key) and JSON at concurrency 64 (each key in turn, --feature-
     rounds times, alternating, medians reported) with the gateway's CPU per request.

Then it prints one table. The "direct" column is the first pass's direct call; each
overhead uses the direct call of its own pass. Everything stays on 127.0.0.1 and every
wait has a deadline. The file-descriptor limit is raised to its hard limit (1,000
streams need about 2,000 descriptors in the gateway and as many here).
Figures are only comparable on a quiet machine: the load generator, the fake provider
and gunicorn share the same cores.
"""

from __future__ import annotations

import argparse
import asyncio
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
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import loadgen  # noqa: E402
from bench.loadgen import percentile  # noqa: E402
from bench.profile import Profiler  # noqa: E402

PYTHON = sys.executable
NATURAL_STREAM_SECONDS = 5.0
ON_TIME = 1.2  # a slow stream that took at most this many times its natural length
SLOW_HEADERS = {"x-fake-chunks": "20", "x-fake-chunk-delay-ms": "250"}


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
                str(ROOT / "bench" / "fake_provider.py"),
                "--port",
                str(self.port),
                "--processes",
                str(processes),
            ],
            stdout=self._log,
            stderr=subprocess.STDOUT,
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
            while _alive(pid) and time.monotonic() < deadline:
                time.sleep(0.05)
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
        self._log.close()


def _alive(pid: int) -> bool:
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


# --- requests --------------------------------------------------------------------------


@dataclass
class Target:
    host: str
    port: int
    openai_auth: dict[str, str]
    anthropic_auth: dict[str, str]

    def with_openai_key(self, key: str) -> Target:
        return Target(self.host, self.port, {"Authorization": f"Bearer {key}"}, {})

    def request(self, kind: str, extra: dict[str, str] | None = None) -> bytes:
        hostport = f"{self.host}:{self.port}"
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if kind == "anthropic":
            body = {
                "model": "claude-bench",
                "max_tokens": 64,
                "messages": [{"role": "user", "content": "Say hello."}],
            }
            headers.update(self.anthropic_auth, **{"anthropic-version": "2023-06-01"})
            path = "/v1/messages"
        else:
            body = {"model": "gpt-bench", "messages": [{"role": "user", "content": "Say hello."}]}
            if kind in ("stream", "slow"):
                body.update(stream=True, stream_options={"include_usage": True})
                headers["Accept"] = "text/event-stream"
            headers.update(self.openai_auth)
            path = "/v1/chat/completions"
        if kind == "slow":
            headers.update(SLOW_HEADERS)
        headers.update(extra or {})
        return loadgen.build_request("POST", path, hostport, headers, json.dumps(body).encode())


# --- the cases -------------------------------------------------------------------------


@dataclass
class SlowResult:
    series: loadgen.Series
    peak_rss: int | None = None
    peak_db: int | None = None
    cpu_ms: float | None = None  # gunicorn CPU time per stream
    sockets: list[int] | None = None  # peak sockets open in each worker (client + upstream)


@dataclass
class PassResult:
    db: str
    workers: str = ""
    seq: dict = field(default_factory=dict)  # (dialect, side) -> Series
    load: dict = field(
        default_factory=dict
    )  # (kind, concurrency, side) -> (Series, cpu_ms or None)
    slow: dict = field(default_factory=dict)  # side -> SlowResult
    costs: dict = field(default_factory=dict)
    profiles: dict = field(default_factory=dict)  # case -> py-spy's summary
    # feature -> {"seq": Series, "overhead": (p50, p99) s, "rates": [...], "cpu_ms": [...]}
    features: dict = field(default_factory=dict)


def warm_up(gateway: Target, result: PassResult) -> None:
    """Every worker serves each kind of request a few times before anything is measured."""
    say(f"[{result.db}] warming up the workers")
    for kind in ("openai", "anthropic", "stream"):
        data = gateway.request(kind)
        series = asyncio.run(
            loadgen.concurrent(gateway.host, gateway.port, data, concurrency=8, duration=1.0)
        )
        if series.errors:
            raise SystemExit(f"bench: the gateway fails {kind} requests: {series.error_samples}")


def run_sequential(direct: Target, gateway: Target | None, args, result: PassResult) -> None:
    for dialect in ("openai", "anthropic"):
        targets = {"direct": (direct.host, direct.port, direct.request(dialect))}
        if gateway is not None:
            targets["gateway"] = (gateway.host, gateway.port, gateway.request(dialect))
        say(f"[{result.db}] 1. sequential {dialect}: {args.sequential} interleaved rounds")
        series = asyncio.run(loadgen.sequential(targets, args.sequential, warmup=100))
        for side, s in series.items():
            result.seq[(dialect, side)] = s


def own_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run_load(
    direct: Target,
    gateway: Target | None,
    gunicorn: Gunicorn | None,
    fake: FakeProviderProcess,
    args,
    result: PassResult,
) -> None:
    sides = [("direct", direct)] + ([("gateway", gateway)] if gateway is not None else [])
    for kind in ("json", "stream"):
        for concurrency in (16, 64):
            for side, target in sides:
                data = target.request("openai" if kind == "json" else "stream")
                say(f"[{result.db}] 2. {kind} c={concurrency} {side}: {args.duration:.0f}s")
                # A short warm-up opens the connections and fills the upstream pools.
                asyncio.run(
                    loadgen.concurrent(
                        target.host, target.port, data, concurrency=concurrency, duration=0.5
                    )
                )
                profiler = None
                if args.profile and side == "gateway":
                    profiler = Profiler(
                        gunicorn.proc.pid,
                        Path(args.data_dir).resolve()
                        / f"profile-{result.db}-{kind}-c{concurrency}.txt",
                        args.duration,
                        args.profile_rate,
                    )
                before = cpu_seconds(gunicorn.pids()) if side == "gateway" else 0.0
                harness_before = own_cpu_seconds() + cpu_seconds(fake.pids())
                series = asyncio.run(
                    loadgen.concurrent(
                        target.host,
                        target.port,
                        data,
                        concurrency=concurrency,
                        duration=args.duration,
                    )
                )
                harness = own_cpu_seconds() + cpu_seconds(fake.pids()) - harness_before
                harness_ms = harness * 1000 / max(1, series.count)
                cpu_ms = None
                if side == "gateway" and series.count:
                    cpu_ms = (cpu_seconds(gunicorn.pids()) - before) * 1000 / series.count
                result.load[(kind, concurrency, side)] = (series, cpu_ms, harness_ms)
                if profiler is not None:
                    result.profiles[f"{kind} c={concurrency}"] = profiler.finish()


def run_slow(
    direct: Target,
    gateway: Target | None,
    gunicorn: Gunicorn | None,
    db: Database | None,
    args,
    result: PassResult,
) -> None:
    sides = [("direct", direct, None)]
    if gateway is not None:
        sides.append(("gateway", gateway, gunicorn))
    for count, ramp in [(c, w) for w in args.ramps for c in args.streams]:
        for side, target, server in sides:
            say(f"[{result.db}] 3. {count} slow streams over {ramp:g} s, {side}")
            run = loadgen.burst(
                target.host,
                target.port,
                target.request("slow"),
                count=count,
                timeout=NATURAL_STREAM_SECONDS + 30,
                ramp=ramp,
            )
            if server is None:
                found = SlowResult(asyncio.run(run))
            else:
                before = cpu_seconds(server.pids())
                with Sampler(server.pids, db) as sampler:
                    series = asyncio.run(run)
                found = SlowResult(
                    series,
                    sampler.peak_rss,
                    sampler.peak_db,
                    (cpu_seconds(server.pids()) - before) * 1000 / count,
                    sorted(sampler.peak_sockets.values(), reverse=True),
                )
            result.slow[(count, ramp, side)] = found
            if found.series.errors:
                say(
                    f"[{result.db}]    {found.series.errors} errors, e.g. {found.series.error_samples}"
                )


FEATURES = (
    ("plain", "no limits"),
    ("limits", "rpm + tpm + max_parallel"),
    ("budget", "every limit + USD and token budgets"),
)


def pg_counters(db: Database) -> tuple[int, int] | None:
    """PostgreSQL's WAL position (bytes) and committed transactions of the bench database."""
    if db.name != "postgresql":
        return None
    import psycopg

    with psycopg.connect(db.pg_maintenance_url, autocommit=True, connect_timeout=5) as conn:
        wal = conn.execute("SELECT pg_current_wal_lsn() - '0/0'::pg_lsn").fetchone()[0]
        commits = conn.execute(
            "SELECT xact_commit FROM pg_stat_database WHERE datname = %s", (db.pg_dbname,)
        ).fetchone()[0]
    return int(wal), int(commits)


def run_features(
    direct: Target,
    gateways: dict[str, Target],
    gunicorn: Gunicorn,
    db: Database,
    args,
    result: PassResult,
) -> None:
    """The cost of limits and budgets: the same call with keys that differ only in them."""
    targets = {"direct": (direct.host, direct.port, direct.request("openai"))}
    for name, _ in FEATURES:
        target = gateways[name]
        targets[name] = (target.host, target.port, target.request("openai"))
    say(f"[{result.db}] 5. features, sequential: {args.sequential} interleaved rounds")
    series = asyncio.run(loadgen.sequential(targets, args.sequential, warmup=100))
    base = series["direct"].latencies
    for name, _ in FEATURES:
        lat = series[name].latencies
        result.features[name] = {
            "seq": series[name],
            "overhead": (
                percentile(lat, 50) - percentile(base, 50),
                percentile(lat, 99) - percentile(base, 99),
            ),
            "rates": [],
            "cpu_ms": [],
            "wal_bytes": [],
            "commits": [],
            "errors": series[name].errors,
        }
    for round_ in range(args.feature_rounds):
        # Alternating order, so a neighbour's load falls on every key alike.
        order = FEATURES if round_ % 2 == 0 else FEATURES[::-1]
        for name, _ in order:
            target = gateways[name]
            data = target.request("openai")
            say(f"[{result.db}] 5. features, JSON c=64 {name}: {args.duration:.0f}s")
            asyncio.run(
                loadgen.concurrent(target.host, target.port, data, concurrency=64, duration=0.5)
            )
            before = cpu_seconds(gunicorn.pids())
            pg_before = pg_counters(db)
            s = asyncio.run(
                loadgen.concurrent(
                    target.host, target.port, data, concurrency=64, duration=args.duration
                )
            )
            found = result.features[name]
            pg_after = pg_counters(db)
            if pg_before and pg_after and s.count:
                # Includes what else runs on the server meanwhile (autovacuum, other
                # databases' WAL): an upper figure on a shared machine.
                found["wal_bytes"].append((pg_after[0] - pg_before[0]) / s.count)
                found["commits"].append((pg_after[1] - pg_before[1]) / s.count)
            found["rates"].append(s.rate)
            found["cpu_ms"].append((cpu_seconds(gunicorn.pids()) - before) * 1000 / max(1, s.count))
            found["errors"] += s.errors
            if s.errors:
                say(f"[{result.db}]    {s.errors} errors, e.g. {s.error_samples}")


def run_costs(env: dict[str, str], args, result: PassResult) -> None:
    say(f"[{result.db}] 4. key check and log writes in-process, {args.iterations} each")
    out = subprocess.run(
        [PYTHON, str(ROOT / "bench" / "inproc.py"), "costs", "--iterations", str(args.iterations)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    if out.returncode != 0:
        raise SystemExit(f"bench: the in-process costs failed:\n{out.stderr[-2000:]}")
    result.costs = json.loads(out.stdout.strip().splitlines()[-1])


def run_pass(kind: str, fake: FakeProviderProcess, args) -> PassResult:
    result = PassResult(db=kind)
    sections = args.sections
    direct = Target(
        "127.0.0.1",
        fake.port,
        {"Authorization": "Bearer sk-bench-direct"},
        {"x-api-key": "sk-ant-bench-direct"},
    )
    if args.direct_only:
        result.db = "direct only"
        if 1 in sections:
            run_sequential(direct, None, args, result)
        if 2 in sections:
            run_load(direct, None, None, fake, args, result)
        if 3 in sections:
            run_slow(direct, None, None, None, args, result)
        return result

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
    keys = json.loads(out.stdout.strip().splitlines()[-1])
    log_path = Path(args.data_dir).resolve() / f"gunicorn-{kind}.log"
    say(f"[{kind}] starting gunicorn (output in {log_path})")
    gunicorn = Gunicorn(env, args, log_path)
    try:
        result.workers = gunicorn.describe()
        gateway = Target(
            "127.0.0.1",
            gunicorn.port,
            {"Authorization": f"Bearer {keys['openai_key']}"},
            {"x-api-key": keys["anthropic_key"]},
        )
        warm_up(gateway, result)
        if 1 in sections:
            run_sequential(direct, gateway, args, result)
        if 2 in sections:
            run_load(direct, gateway, gunicorn, fake, args, result)
        if 3 in sections:
            run_slow(direct, gateway, gunicorn, db, args, result)
        if 5 in sections:
            gateways = {
                "plain": gateway,
                "limits": gateway.with_openai_key(keys["limits_key"]),
                "budget": gateway.with_openai_key(keys["budget_key"]),
            }
            run_features(direct, gateways, gunicorn, db, args, result)
    finally:
        gunicorn.stop()
    if 4 in sections:
        run_costs(env, args, result)
    return result


# --- the table -------------------------------------------------------------------------


def ms(value: float) -> str:
    return f"{value * 1000:.2f}"


def pair(values: list[float]) -> str:
    if not values:
        return "-"
    return f"{ms(percentile(values, 50))} / {ms(percentile(values, 99))}"


def with_errors(text: str, series) -> str:
    return f"{text} ({series.errors} err)" if series.errors else text


def build_rows(results: list[PassResult], args) -> list[tuple[str, ...]]:
    first = results[0]
    rows: list[tuple[str, ...]] = []

    def row(label: str, direct: str, per_pass, target: str = "") -> None:
        rows.append((label, direct, *(per_pass(r) for r in results), target))

    for dialect, name in (("openai", "OpenAI chat"), ("anthropic", "Anthropic messages")):
        if (dialect, "direct") not in first.seq:
            continue
        direct = first.seq[(dialect, "direct")]
        row(
            f"1 sequential {name}, p50 / p99 ms",
            with_errors(pair(direct.latencies), direct),
            lambda r, d=dialect: (
                with_errors(pair(r.seq[(d, "gateway")].latencies), r.seq[(d, "gateway")])
                if (d, "gateway") in r.seq
                else "-"
            ),
        )

        def overhead(r, d=dialect) -> str:
            if (d, "gateway") not in r.seq:
                return "-"
            g, b = r.seq[(d, "gateway")].latencies, r.seq[(d, "direct")].latencies
            return (
                f"{ms(percentile(g, 50) - percentile(b, 50))} / "
                f"{ms(percentile(g, 99) - percentile(b, 99))}"
            )

        row(
            "  overhead (gateway - direct), p50 / p99 ms",
            "",
            overhead,
            "<= 1.5 / <= 4 (SQLite)" if dialect == "openai" else "",
        )

    for kind in ("json", "stream"):
        for concurrency in (16, 64):
            if (kind, concurrency, "direct") not in first.load:
                continue
            label = "JSON" if kind == "json" else "stream"
            direct, _, direct_harness = first.load[(kind, concurrency, "direct")]

            def get(r, k=kind, c=concurrency):
                return r.load.get((k, c, "gateway"), (None, None, None))

            row(
                f"2 {label} c={concurrency}, requests/s",
                with_errors(f"{direct.rate:.0f}", direct),
                lambda r, g=get: with_errors(f"{g(r)[0].rate:.0f}", g(r)[0]) if g(r)[0] else "-",
                ">= 700" if (kind, concurrency) == ("json", 64) else "",
            )
            row(
                "  latency p50 / p99 ms",
                pair(direct.latencies),
                lambda r, g=get: pair(g(r)[0].latencies) if g(r)[0] else "-",
            )
            if kind == "stream":
                row(
                    "  time to first byte p50 / p99 ms",
                    pair(direct.ttfbs),
                    lambda r, g=get: pair(g(r)[0].ttfbs) if g(r)[0] else "-",
                )
            row(
                "  gateway CPU per request ms",
                "",
                lambda r, g=get: f"{g(r)[1]:.2f}" if g(r)[1] is not None else "-",
            )
            row(
                "  harness CPU per request (load generator + fake) ms",
                f"{direct_harness:.2f}",
                lambda r, g=get: f"{g(r)[2]:.2f}" if g(r)[2] is not None else "-",
            )

    def stretch(series) -> str:
        if not series.latencies:
            return "-"
        p50 = percentile(series.latencies, 50) / NATURAL_STREAM_SECONDS - 1
        worst = max(series.latencies) / NATURAL_STREAM_SECONDS - 1
        return f"{p50 * 100:+.1f}% / {worst * 100:+.1f}%"

    def on_time(series) -> str:
        late = NATURAL_STREAM_SECONDS * ON_TIME
        return str(sum(1 for latency in series.latencies if latency <= late))

    for n, ramp in [(c, w) for w in args.ramps for c in args.streams]:
        if (n, ramp, "direct") not in first.slow:
            continue
        direct = first.slow[(n, ramp, "direct")].series

        def slow(field_name: str, show, n=n, ramp=ramp):
            def cell(r) -> str:
                found = r.slow.get((n, ramp, "gateway"))
                value = getattr(found, field_name, None) if found else None
                return show(value) if value is not None else "-"

            return cell

        label = f"3 {n} slow streams (20 x 250 ms, started over {ramp:g} s): errors"
        row(label, str(direct.errors), slow("series", lambda s: str(s.errors)), "0")
        row(
            f"  finished on time (within {ON_TIME:g} x 5 s)",
            on_time(direct),
            slow("series", on_time),
            str(n),
        )
        row(
            "  streams open at once (peak)",
            str(direct.peak_open),
            slow("series", lambda s: str(s.peak_open)),
        )
        ttfb = slow("series", lambda s: pair(s.ttfbs))
        row("  time to first byte p50 / p99 ms", pair(direct.ttfbs), ttfb, "p99 < 100")
        row("  stretch beyond 5 s, p50 / max", stretch(direct), slow("series", stretch), "<= +5%")
        row(
            "  peak RSS, gunicorn master + workers, MiB",
            "",
            slow("peak_rss", lambda v: f"{v / 2**20:.0f}"),
            "< 1024",
        )
        row("  peak database connections", "", slow("peak_db", str), "bounded by the pool")
        row("  gateway CPU per stream ms", "", slow("cpu_ms", lambda v: f"{v:.1f}"))
        row(
            "  peak sockets per worker (client + upstream)",
            "",
            slow("sockets", lambda v: " / ".join(map(str, v))),
        )

    def cost(name: str):
        def cell(r) -> str:
            c = r.costs.get(name)
            return f"{c['mean_us']:.0f} / {c['p99_us']:.0f}" if c else "-"

        return cell

    if any(r.costs for r in results):
        row("4 key check, warm cache, mean / p99 us", "", cost("key_authenticate"))
        row("  upstream choice, mean / p99 us", "", cost("upstream_choose"))
        row("  routing by model (5 upstreams), mean / p99 us", "", cost("upstream_candidates"))
        row("  log_open + log_finish, mean / p99 us", "", cost("log_open_finish"))
        row("  price lookup + cost, mean / p99 us", "", cost("price_and_cost"))
        if any("log_open_finish_released" in r.costs for r in results):
            row(
                "  the same, connection back to the pool between, us",
                "",
                cost("log_open_finish_released"),
            )

    def feature(name: str, show):
        def cell(r) -> str:
            found = r.features.get(name)
            return show(found) if found else "-"

        return cell

    def median(values: list[float]) -> float:
        ordered = sorted(values)
        return ordered[len(ordered) // 2]

    if any(r.features for r in results):
        for name, label in FEATURES:
            row(
                f"5 {label}: overhead p50 / p99 ms",
                "",
                feature(
                    name,
                    lambda f: with_errors(
                        f"{ms(f['overhead'][0])} / {ms(f['overhead'][1])}", f["seq"]
                    ),
                ),
                "" if name == "plain" else "<= no limits + 0.3 (p50)",
            )
            row(
                "  JSON c=64 requests/s (median) / gateway CPU per request ms",
                "",
                feature(
                    name,
                    lambda f: (
                        f"{median(f['rates']):.0f} / {median(f['cpu_ms']):.2f}"
                        + (f" ({f['errors']} err)" if f["errors"] else "")
                    ),
                ),
                "" if name == "plain" else ">= 85% of no limits",
            )
            row(
                "  PostgreSQL: WAL bytes / transactions per request",
                "",
                feature(
                    name,
                    lambda f: (
                        f"{median(f['wal_bytes']):.0f} / {median(f['commits']):.1f}"
                        if f["wal_bytes"]
                        else "-"
                    ),
                ),
            )
    return rows


def print_table(results: list[PassResult], args) -> None:
    headers = ("measure", "direct", *(f"gateway {r.db}" for r in results), "target")
    rows = build_rows(results, args)
    widths = [max(len(str(x[i])) for x in [headers, *rows]) for i in range(len(headers))]

    def line(cells) -> str:
        return "| " + " | ".join(str(c).ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"

    workers = ", ".join(f"{r.db}: {r.workers}" for r in results if r.workers)
    print(
        f"\nBenchmark {time.strftime('%Y-%m-%d %H:%M')}, {os.cpu_count()} CPUs, gunicorn.conf.py "
        f"({workers or 'no gateway'}); command: {' '.join(['bench/run.py', *sys.argv[1:]])}"
    )
    print(line(headers))
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for r in rows:
        print(line(r))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description="The gateway's benchmark beside a direct call.",
        epilog=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--quick", action="store_true", help="small counts for a smoke run")
    parser.add_argument(
        "--databases",
        default="sqlite,postgresql",
        help="comma-separated: sqlite, postgresql (default both)",
    )
    parser.add_argument(
        "--sections", default="1,2,3,4,5", help="which measures to run (default 1,2,3,4,5)"
    )
    parser.add_argument(
        "--feature-rounds",
        type=int,
        default=3,
        help="JSON c=64 runs per key in section 5, alternating (default 3)",
    )
    parser.add_argument(
        "--direct-only", action="store_true", help="no gateway: test the harness itself"
    )
    parser.add_argument(
        "--sequential", type=int, help="rounds of sequential calls (default 2000; quick 300)"
    )
    parser.add_argument(
        "--duration", type=float, help="seconds per throughput case (default 8; quick 2)"
    )
    parser.add_argument(
        "--streams",
        help="concurrent slow streams, or several counts to find how many it holds: "
        "200,500,1000 (default 1000; quick 200)",
    )
    parser.add_argument(
        "--ramp",
        default="1",
        help="seconds over which the slow streams start, or several: 2,1 (default 1: 1,000 "
        "streams started within one second; a stream lasts 5 s, so all are open together "
        "after it); 0 sends them in one burst",
    )
    parser.add_argument(
        "--iterations", type=int, help="in-process iterations (default 5000; quick 1000)"
    )
    parser.add_argument("--workers", type=int, help="override gunicorn.conf.py's worker count")
    parser.add_argument(
        "--fake-processes", type=int, default=1, help="fake provider processes (default 1)"
    )
    parser.add_argument(
        "--data-dir",
        default=str(ROOT / "data" / "bench"),
        help="where the SQLite file and gunicorn's output go (default data/bench)",
    )
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get("BENCH_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/gw_bench"),
        help="database to DROP and CREATE for the PostgreSQL pass (BENCH_POSTGRES_URL)",
    )
    parser.add_argument("--json", help="also write the raw figures to this file")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="sample the workers with py-spy during section 2's gateway cases (bench/profile.py); "
        "the sampler takes CPU too, so figures of a profiled run are not for the README",
    )
    parser.add_argument(
        "--profile-rate", type=int, default=200, help="py-spy samples per second (default 200)"
    )
    args = parser.parse_args(argv)

    defaults = {
        "sequential": (2000, 300),
        "duration": (8.0, 2.0),
        "streams": ("1000", "200"),
        "iterations": (5000, 1000),
    }
    for name, (full, quick) in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, quick if args.quick else full)
    args.sections = {int(s) for s in args.sections.split(",") if s.strip()}
    args.streams = [int(n) for n in str(args.streams).split(",") if n.strip()]
    args.ramps = [float(r) for r in str(args.ramp).split(",") if r.strip()]
    kinds = [k.strip() for k in args.databases.split(",") if k.strip()]
    for k in kinds:
        if k not in ("sqlite", "postgresql"):
            parser.error(f"unknown database {k!r}")
    if args.direct_only:
        kinds = ["direct"]
    Path(args.data_dir).mkdir(parents=True, exist_ok=True)
    limit = raise_fd_limit()
    if 3 in args.sections and limit < 2 * max(args.streams) + 100:
        say(f"warning: the descriptor limit is {limit}; {max(args.streams)} streams need more")

    if "postgresql" in kinds and not args.direct_only and not postgres_reachable(args.postgres_url):
        say(f"PostgreSQL is not reachable at {args.postgres_url}: skipping its pass")
        kinds.remove("postgresql")
    if not kinds:
        raise SystemExit("bench: no database to run against")
    fake = FakeProviderProcess(
        args.fake_processes, Path(args.data_dir).resolve() / "fake-provider.log"
    )
    results = []
    try:
        for kind in kinds:
            results.append(run_pass(kind, fake, args))
    finally:
        fake.stop()
    print_table(results, args)
    for r in results:
        for case, text in r.profiles.items():
            print(f"\nProfile, {r.db}, {case} (py-spy, every worker):\n{text}")
    if args.json:
        Path(args.json).write_text(json.dumps([_raw(r) for r in results], indent=1, default=str))


def _raw(r: PassResult) -> dict:
    def s(series) -> dict:
        return {
            "count": series.count,
            "errors": series.errors,
            "elapsed": series.elapsed,
            "p50": percentile(series.latencies, 50),
            "p99": percentile(series.latencies, 99),
            "ttfb_p50": percentile(series.ttfbs, 50),
            "ttfb_p99": percentile(series.ttfbs, 99),
            "errors_seen": series.error_samples,
        }

    return {
        "db": r.db,
        "workers": r.workers,
        "sequential": {f"{d}/{side}": s(v) for (d, side), v in r.seq.items()},
        "load": {
            f"{k}/c{c}/{side}": {**s(v), "rate": v.rate, "cpu_ms": cpu}
            for (k, c, side), (v, cpu, _) in r.load.items()
        },
        "slow": {
            f"{count}/{ramp:g}s/{side}": {
                **s(v.series),
                "peak_rss": v.peak_rss,
                "peak_db": v.peak_db,
                "cpu_ms": v.cpu_ms,
                "sockets": v.sockets,
            }
            for (count, ramp, side), v in r.slow.items()
        },
        "costs": r.costs,
        "features": {
            name: {
                "overhead_p50": f["overhead"][0],
                "overhead_p99": f["overhead"][1],
                "rates": f["rates"],
                "cpu_ms": f["cpu_ms"],
                "wal_bytes": f["wal_bytes"],
                "commits": f["commits"],
                "errors": f["errors"],
            }
            for name, f in r.features.items()
        },
    }


if __name__ == "__main__":
    main()
